//! The printer: owns quiet/colour and the split between stdout (results) and stderr (notes,
//! warnings, prompts, errors). Commands print through it; two things write to stderr
//! themselves: the logs (`logging`: the level from `-v`, colours from the printer) and the
//! progress bars (`phases::jobs`: hidden when the printer is quiet or in JSON mode).

use std::io::{self, Write};

use console::{Style, Term};

use crate::cli::{ColorChoice, OutputFormat};
use crate::error::Error;

/// Where and how a command speaks.
#[derive(Debug, Clone)]
pub struct Printer {
    pub format: OutputFormat,
    pub quiet: bool,
    colors: bool,
}

impl Printer {
    pub fn new(format: OutputFormat, quiet: bool, color: ColorChoice) -> Self {
        let colors = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none()
                    && Term::stderr().features().colors_supported()
            }
        };
        Printer {
            format,
            quiet,
            colors,
        }
    }

    /// Whether stderr gets colours (`--color`, `NO_COLOR`, a terminal).
    pub fn colors(&self) -> bool {
        self.colors
    }

    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    fn style(&self, style: Style) -> Style {
        if self.colors {
            style.force_styling(true)
        } else {
            Style::new().force_styling(false)
        }
    }

    /// A result on stdout, as is (text mode).
    pub fn result(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// A JSON document on stdout (json mode), one line.
    pub fn json(&self, value: &serde_json::Value) -> io::Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer(&mut out, value)?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// A line of progress or report on stderr (suppressed by `-q`).
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// A question on stderr, the answer typed on the same line (shown also with `-q`: the
    /// run waits for it).
    pub fn prompt(&self, text: &str) {
        let mut err = io::stderr().lock();
        let _ = write!(err, "{text}").and_then(|_| err.flush());
    }

    /// A warning on stderr (suppressed by `-q`).
    pub fn warn(&self, text: &str) {
        if !self.quiet {
            eprintln!(
                "{} {text}",
                self.style(Style::new().yellow().bold())
                    .apply_to("warning:")
            );
        }
    }

    /// An error: a JSON document on stdout in json mode, else text on stderr.
    pub fn error(&self, err: &Error) {
        if self.is_json() {
            let _ = self.json(&err.to_json());
            return;
        }
        let red = self.style(Style::new().red().bold());
        let dim = self.style(Style::new().dim());
        eprintln!("{} {}", red.apply_to("error:"), err.message);
        for cause in err.causes() {
            eprintln!("  {} {cause}", dim.apply_to("caused by:"));
        }
        if let Some(hint) = &err.hint {
            eprintln!(
                "  {} {hint}",
                self.style(Style::new().cyan()).apply_to("hint:")
            );
        }
    }
}
