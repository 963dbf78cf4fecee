use la_migrate::exit::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = match la_migrate::cli::parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::Usage.into()
            } else {
                ExitCode::Success.into()
            };
        }
    };
    let (printer, result) = la_migrate::commands::run(cli);
    match result {
        Ok(()) => ExitCode::Success.into(),
        Err(err) => {
            printer.error(&err);
            err.code.into()
        }
    }
}
