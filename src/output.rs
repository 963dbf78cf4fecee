//! The printer: owns quiet/colour and the split between stdout (results) and stderr (notes,
//! warnings, prompts, errors). Commands print through it; two things write to stderr
//! themselves: the logs (`logging`: the level from `-v`, colours from the printer) and the
//! progress bars (`phases::jobs`: hidden when the printer is quiet or in JSON mode).

use std::io::{self, Write};
use std::time::Duration;

use console::{Style, Term};
use indicatif::{ProgressBar, ProgressStyle};

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

    /// A result on stdout: the document `json` builds in json mode, else what `text` writes
    /// through this printer.
    pub fn output(
        &self,
        json: impl FnOnce() -> serde_json::Value,
        text: impl FnOnce(&Printer) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.is_json() {
            self.json(&json())
        } else {
            text(self)
        }
    }

    /// Whether several results go to stdout as one document (json mode), not one after the
    /// other.
    pub fn gathers_results(&self) -> bool {
        self.is_json()
    }

    /// An event of a run: one JSON line on stdout in json mode, else what `text` says on
    /// stderr (notes and warnings through this printer).
    pub fn event(&self, json: serde_json::Value, text: impl FnOnce(&Printer)) {
        if self.is_json() {
            let _ = self.json(&json);
        } else {
            text(self);
        }
    }

    /// Progress inside a step on stderr: text mode only (suppressed by `-q`).
    pub fn progress(&self, text: &str) {
        if !self.is_json() {
            self.note(text);
        }
    }

    /// A bar with bytes and rate on stderr (hidden for JSON and `-q`).
    pub fn bytes_bar(&self, total: Option<u64>, what: &str) -> ProgressBar {
        if self.is_json() || self.quiet {
            return ProgressBar::hidden();
        }
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::new_spinner(),
        };
        let template = if total.is_some() {
            "    {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}"
        } else {
            "    {msg} {spinner} {bytes} {binary_bytes_per_sec} {elapsed}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
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
