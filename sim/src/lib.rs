//! `la-sim`: a simulated Kubernetes cluster for testing and demonstrating `la-migrate`.
//!
//! A real API server (HTTPS, bearer tokens, the Kubernetes wire format) over an in-memory
//! store, with controllers that turn Deployments, StatefulSets, Jobs and claims into pods and
//! volumes, and a runtime that turns pods into real processes (PostgreSQL, Redis) by image.

pub mod api;
pub mod cli;
pub mod cluster;
pub mod control;
pub mod controllers;
pub mod daemon;
pub mod runtime;
pub mod seed;
pub mod store;
