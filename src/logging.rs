//! Logs (tracing) go to stderr; the level follows `-v` and `HELM_DEBUG`, colours follow the
//! printer's choice (`--color`, `NO_COLOR`, a terminal).

use tracing_subscriber::EnvFilter;

pub fn init(verbosity: u8, colors: bool) {
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("LA_MIGRATE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("la_migrate={level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colors)
        .try_init();
}
