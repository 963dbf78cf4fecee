//! What a `--set` value may reveal, and how it is shown: the one place that decides which
//! values are secret. Pure.
//!
//! A `--set` argument is helm's comma-separated list of `key=value` pairs (`a=1,b.c=2`, `\,`
//! escaping a comma, `{x,y}` a list). A value is secret when its key names a password,
//! secret, token, key, credential or a URL/DSN (which may carry a user and password, such as
//! `DATABASE_URL`), or when the value itself is a URL with a password (`scheme://u:p@host`).

use std::ffi::OsString;

/// What a secret value is shown as.
pub const REDACTED: &str = "<redacted>";
/// What any `--set` value is stored as in the state: the values live in the values Secret.
pub const SAVED: &str = "<saved>";

/// Words that make a key secret when its last segment contains one (case-insensitive).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "key",
    "url",
    "uri",
    "dsn",
    "connectionstring",
];

/// Whether `key` (a dotted values path, or an environment variable name) names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    let last: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| last.contains(w))
}

/// Whether `value` holds a URL with a password in it (`postgres://user:pw@host/db`).
pub fn has_url_credentials(value: &str) -> bool {
    value.match_indices("://").any(|(at, _)| {
        let rest = &value[at + 3..];
        let authority = rest.split(['/', '?', '#', ' ']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    })
}

/// Whether a `key=value` pair's value is secret.
fn is_secret_pair(key: &str, value: &str) -> bool {
    is_secret_key(key) || has_url_credentials(value)
}

/// The `key=value` pairs of one `--set` argument, split as helm splits them: at commas that
/// are neither escaped (`\,`) nor inside a `{...}` list.
fn pairs(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut depth, mut escaped) = (0, 0usize, false);
    for (i, c) in arg.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&arg[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&arg[start..]);
    out
}

/// How a `--set` argument is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Secret values redacted, the others as given (runbook, plan, logs).
    Public,
    /// Every value replaced by [`SAVED`] (the state: values stay in the values Secret).
    KeysOnly,
}

/// One `--set` argument as it may be shown.
pub fn set_arg(arg: &str, show: Show) -> String {
    pairs(arg)
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if show == Show::KeysOnly => format!("{key}={SAVED}"),
            Some((key, value)) if is_secret_pair(key, value) => {
                format!("{key}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The values of `--set` arguments that are secret, to mask wherever they may be echoed
/// (helm's error output).
pub fn secret_values(sets: &[String]) -> Vec<String> {
    let mut out: Vec<String> = sets
        .iter()
        .flat_map(|s| pairs(s))
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, value)| is_secret_pair(key, value))
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
        .collect();
    // Longest first, so a value containing another is masked whole.
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out.dedup();
    out
}

/// The secret values of the `--set`-style flags of a command line (see [`secret_values`]).
pub fn argv_secrets(args: &[OsString]) -> Vec<String> {
    let sets: Vec<String> = words(args)
        .into_iter()
        .filter_map(|w| match w {
            Word::Set { value, literal, .. } => Some(literal_escaped(&value, literal)),
            Word::Plain(_) => None,
        })
        .collect();
    // As given, and as helm reads it (`\\,` is a comma).
    let mut out: Vec<String> = secret_values(&sets)
        .into_iter()
        .flat_map(|v| [v.replace("\\,", ","), v])
        .collect();
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out.dedup();
    out
}

/// A `--set-literal` value (one pair, commas included) in the comma form.
fn literal_escaped(value: &str, literal: bool) -> String {
    if literal {
        value.replace(',', "\\,")
    } else {
        value.to_string()
    }
}

/// `text` with every occurrence of `secrets` replaced by [`REDACTED`].
pub fn mask(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), REDACTED))
}

/// Helm's flags whose next word (or `=value`) is a `--set`-style list.
const SET_FLAGS: &[&str] = &["--set", "--set-string", "--set-json", "--set-literal"];

/// Whether `word` is one of helm's `--set` flags, bare (`--set`) or with its value
/// (`--set=a=1`): the value's offset in `word`.
fn set_flag(word: &str) -> Option<Option<usize>> {
    SET_FLAGS.iter().find_map(|flag| {
        let rest = word.strip_prefix(flag)?;
        match rest.strip_prefix('=') {
            _ if rest.is_empty() => Some(None),
            Some(_) => Some(Some(flag.len() + 1)),
            None => None,
        }
    })
}

/// A word of a command line: a `--set`-style flag's value (after `prefix`: the flag and
/// `=`, or nothing when the flag was the word before), or any other word.
enum Word {
    Plain(String),
    Set {
        prefix: String,
        value: String,
        literal: bool,
    },
}

/// The words of a command line, the values of `--set`-style flags told apart.
fn words(args: &[OsString]) -> Vec<Word> {
    let mut out = Vec::with_capacity(args.len());
    let mut next_is_set: Option<bool> = None;
    for arg in args {
        let word = arg.to_string_lossy().into_owned();
        if let Some(literal) = next_is_set.take() {
            out.push(Word::Set {
                prefix: String::new(),
                value: word,
                literal,
            });
            continue;
        }
        match set_flag(&word) {
            Some(None) => {
                next_is_set = Some(word == "--set-literal");
                out.push(Word::Plain(word));
            }
            Some(Some(at)) => out.push(Word::Set {
                literal: word.starts_with("--set-literal="),
                prefix: word[..at].to_string(),
                value: word[at..].to_string(),
            }),
            None => out.push(Word::Plain(word)),
        }
    }
    out
}

/// A command line (helm's, or the plugin's own) with the values of its `--set` flags shown
/// as [`Show::Public`]: for logs. `--set-literal` takes one value, never split.
pub fn argv(args: &[OsString]) -> Vec<String> {
    words(args)
        .into_iter()
        .map(|w| match w {
            Word::Plain(word) => word,
            Word::Set {
                prefix,
                value,
                literal,
            } => format!("{prefix}{}", value_shown(&value, literal)),
        })
        .collect()
}

/// The value of a `--set`-style flag as shown (`--set-literal`'s is one pair, never split).
fn value_shown(value: &str, literal: bool) -> String {
    if !literal {
        return set_arg(value, Show::Public);
    }
    match value.split_once('=') {
        Some((key, v)) if is_secret_pair(key, v) => format!("{key}={REDACTED}"),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_naming_a_secret_or_a_url_are_secret() {
        for key in [
            "postgresql.auth.postgresPassword",
            "redis.auth.password",
            "app.env.DATABASE_URL",
            "DATABASE_URL",
            "REDIS_URI",
            "sentry.dsn",
            "cognigy.apiToken",
            "secretKeyBase",
            "postgresql.auth.existingSecret",
            "aws.secret_access_key",
            "smtp.credentials",
            "extraEnv[0].SECRET_KEY_BASE",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "postgresql.image.repository",
            "app.replica",
            "postgresql.auth.username",
            "redis.master.podAnnotations.overrides",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn urls_with_a_password_are_secret_whatever_their_key() {
        assert!(has_url_credentials("postgres://app:pw@db:5432/live"));
        assert!(has_url_credentials("x redis://:pw@redis:6379/0"));
        assert!(!has_url_credentials("https://example.com/a@b"));
        assert!(!has_url_credentials("https://user@example.com/"));
        assert!(!has_url_credentials("bitnamilegacy/postgresql"));
    }

    #[test]
    fn each_pair_of_helms_comma_form_is_judged_on_its_own() {
        assert_eq!(
            set_arg("a=1,postgresql.auth.postgresPassword=x", Show::Public),
            "a=1,postgresql.auth.postgresPassword=<redacted>"
        );
        assert_eq!(
            set_arg(r"pw.password=a\,b,c=2", Show::Public),
            "pw.password=<redacted>,c=2"
        );
        assert_eq!(
            set_arg(
                "list={a,b},app.env.DATABASE_URL=postgres://u:p@h/d",
                Show::Public
            ),
            "list={a,b},app.env.DATABASE_URL=<redacted>"
        );
        assert_eq!(
            set_arg("extraEnv[0].value=postgres://u:p@h/d", Show::Public),
            "extraEnv[0].value=<redacted>"
        );
        assert_eq!(
            set_arg("image.repository=bitnamilegacy/redis", Show::Public),
            "image.repository=bitnamilegacy/redis"
        );
        assert_eq!(
            set_arg("a=1,b.c=two", Show::KeysOnly),
            "a=<saved>,b.c=<saved>"
        );
    }

    #[test]
    fn secret_values_are_masked_in_free_text_longest_first() {
        let sets = vec![
            "a=1,postgresql.auth.postgresPassword=Pw-1".to_string(),
            "redis.auth.password=Pw-1-longer".to_string(),
        ];
        let secrets = secret_values(&sets);
        assert_eq!(secrets, ["Pw-1-longer", "Pw-1"]);
        assert_eq!(
            mask("bad value Pw-1-longer and Pw-1 here; a=1", &secrets),
            "bad value <redacted> and <redacted> here; a=1"
        );
    }

    #[test]
    fn logged_command_lines_hide_every_set_flags_secret() {
        let args: Vec<OsString> = [
            "install",
            "r",
            "--set",
            "a=1,postgresql.auth.postgresPassword=P1",
            "--set=redis.auth.password=P2",
            "--set-string",
            "DATABASE_URL=postgres://u:P3@h/d",
            "--set-literal",
            "app.token=P4,still-the-token",
            "--set-json",
            "x.secret=\"P5\"",
            "--settings-not-a-set-flag",
            "keep",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let shown = argv(&args).join(" ");
        for secret in ["P1", "P2", "P3", "P4", "P5", "still-the-token"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("--set a=1,postgresql.auth.postgresPassword=<redacted>"));
        assert!(shown.contains("--set=redis.auth.password=<redacted>"));
        assert!(shown.ends_with("--settings-not-a-set-flag keep"), "{shown}");
        let secrets = argv_secrets(&args);
        for secret in [
            "P1",
            "P2",
            "postgres://u:P3@h/d",
            "P4,still-the-token",
            "\"P5\"",
        ] {
            assert!(
                secrets.contains(&secret.to_string()),
                "{secret}: {secrets:?}"
            );
        }
    }
}
