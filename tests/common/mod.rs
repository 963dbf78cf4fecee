//! Shared helpers for the integration tests: [`tools`] finds the test dependencies, [`pg`]
//! runs throwaway PostgreSQL servers, [`sim`] a simulated cluster with a release on it.
// Each test file uses a part of the helpers and of their re-exports.
#![allow(dead_code, unused_imports)]

pub mod pg;
pub mod sim;
pub mod tools;
