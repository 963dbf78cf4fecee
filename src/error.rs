//! The one error type: what failed (on which object), why, and what to run next.

use std::fmt;

use crate::exit::ExitCode;

/// A failure a person or a script reads.
///
/// `message` names what failed and on which object; `hint` says what to do next (usually the
/// command to run); `source` keeps the underlying cause, printed as "caused by" lines.
#[derive(Debug)]
pub struct Error {
    pub code: ExitCode,
    pub message: String,
    pub hint: Option<String>,
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// Adds (or replaces) the next step the reader should take.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Keeps the underlying cause.
    pub fn source(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The chain of causes, outermost first, without the message itself.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|e| e as _);
        while let Some(err) = next {
            let text = err.to_string();
            if out.last() != Some(&text) {
                out.push(text);
            }
            next = err.source();
        }
        out
    }

    /// The stable JSON shape of an error for `--output json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "code": self.code.code(),
                "kind": self.code.name(),
                "message": self.message,
                "causes": self.causes(),
                "hint": self.hint,
            }
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// Attaches a message and exit code to a lower-level error.
pub trait Context<T> {
    fn context(self, code: ExitCode, message: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E> Context<T> for std::result::Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn context(self, code: ExitCode, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::new(code, message()).source(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_list_the_chain_without_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = Error::new(ExitCode::NotFound, "cannot read values file a.yaml")
            .source(io)
            .hint("check the path given to -f");
        assert_eq!(err.causes(), vec!["no such file".to_string()]);
        let json = err.to_json();
        assert_eq!(json["error"]["kind"], "not-found");
        assert_eq!(json["error"]["code"], 4);
        assert_eq!(json["error"]["hint"], "check the path given to -f");
    }
}
