//! One file per command: argument plumbing and a call into the library.

pub mod env;
pub mod migrate;
pub mod values;

use crate::cli::{Cli, Command, MigrationCommand};
use crate::error::Result;
use crate::output::Printer;
use crate::settings::{ProcessEnv, Settings};

/// Resolves settings and runs the chosen command.
pub fn run(cli: Cli) -> (Printer, Result<()>) {
    let migration = match &cli.command {
        Command::V444(m) => Some(m),
        Command::Env => None,
    };
    let settings = Settings::resolve(&cli.global, migration, &ProcessEnv);
    let printer = match &settings {
        Ok(s) => Printer::new(s.output, s.quiet, s.color),
        Err(_) => Printer::new(cli.global.output, cli.global.quiet, cli.global.color),
    };
    let settings = match settings {
        Ok(s) => s,
        Err(e) => return (printer, Err(e)),
    };
    crate::logging::init(settings.verbosity, printer.colors());
    let result = match cli.command {
        Command::Env => env::run(&settings, &printer),
        Command::V444(m) => match m.command {
            Some(MigrationCommand::Values(args)) => {
                values::run(&settings, &printer, &args, m.run.dry_run)
            }
            command => migrate::run(&settings, &printer, &m.run, command.as_ref()),
        },
    };
    (printer, result)
}
