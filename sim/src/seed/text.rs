//! Human-looking text: names, addresses and message bodies in several languages and scripts,
//! with the characters that break naive escaping (quotes, backslashes, tabs, newlines, emoji,
//! combining marks). Everything is drawn from a row's own [`Rng`], so it is deterministic.

use super::rng::Rng;

const FIRST_NAMES: &[&str] = &[
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Elif",
    "François",
    "Grace",
    "Hiroshi",
    "Ines",
    "Jürgen",
    "Karin",
    "Liam",
    "Mónica",
    "Nils",
    "Olga",
    "Priya",
    "Quentin",
    "Rafał",
    "Søren",
    "Tomás",
    "Uwe",
    "Valentina",
    "Wei",
    "Xenia",
    "Yusuf",
    "Zoë",
    "Łukasz",
    "Ðorđe",
    "Άννα",
    "Иван",
    "美咲",
    "민준",
    "محمد",
    "D'Arcy",
];

const LAST_NAMES: &[&str] = &[
    "Müller",
    "Schmidt",
    "O'Brien",
    "García",
    "Nguyễn",
    "Smith",
    "Jørgensen",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Öztürk",
    "Yamamoto",
    "Ivanova",
    "Silva",
    "Van der Berg",
    "MacLeod",
    "Černý",
    "Fernández",
    "Papadopoulos",
    "Kim",
    "Haddad",
    "Novák",
    "Lindqvist",
    "Weiß",
    "Zhang",
    "Patel",
    "Ó Súilleabháin",
    "Wójcik",
];

const WORDS_EN: &[&str] = &[
    "hello",
    "order",
    "invoice",
    "delivery",
    "refund",
    "account",
    "password",
    "reset",
    "thanks",
    "please",
    "could",
    "you",
    "check",
    "my",
    "the",
    "package",
    "arrived",
    "damaged",
    "yesterday",
    "tracking",
    "number",
    "support",
    "agent",
    "help",
    "issue",
    "still",
    "not",
    "working",
    "app",
    "login",
    "error",
    "message",
    "when",
    "I",
    "try",
    "to",
    "pay",
    "card",
    "declined",
    "again",
    "subscription",
    "cancel",
    "upgrade",
    "plan",
    "price",
    "discount",
    "code",
    "expired",
    "today",
    "tomorrow",
    "address",
    "changed",
    "phone",
    "email",
    "confirm",
    "sorry",
    "for",
    "the",
    "inconvenience",
    "we",
    "will",
    "look",
    "into",
    "this",
    "right",
    "away",
    "ticket",
    "escalated",
];

const WORDS_DE: &[&str] = &[
    "Guten",
    "Tag",
    "Bestellung",
    "Rechnung",
    "Lieferung",
    "Rückerstattung",
    "bitte",
    "danke",
    "schön",
    "Größe",
    "Straße",
    "über",
    "für",
    "können",
    "Sie",
    "mir",
    "helfen",
    "Konto",
    "gesperrt",
    "Passwort",
    "vergessen",
    "Grüße",
    "Umtausch",
    "Zustellung",
    "verspätet",
];

const WORDS_OTHER: &[&str] = &[
    "merci",
    "beaucoup",
    "commande",
    "reçu",
    "où",
    "est",
    "gracias",
    "pedido",
    "envío",
    "añadir",
    "спасибо",
    "заказ",
    "доставка",
    "ありがとう",
    "注文",
    "配送",
    "谢谢",
    "订单",
    "감사합니다",
    "주문",
    "شكرا",
    "طلب",
    "תודה",
    "ευχαριστώ",
    "naïve",
    "café",
    "e\u{301}te\u{301}",
];

const EMOJI: &[&str] = &["🙂", "👍", "🙏", "😡", "📦", "🚚", "❤️", "👨‍👩‍👧", "🇩🇪", "✅"];

const ODD_BITS: &[&str] = &[
    "\"quoted\"",
    "'single'",
    "C:\\Users\\kunde\\Downloads\\rechnung.pdf",
    "\\\\fileserver\\share",
    "regex \\d+\\.\\d+",
    "a\ttabbed\tline",
    "50% off",
    "<b>bold</b>",
    "{\"json\": true}",
    "$HOME/${PATH}",
    "back\\slash",
    "semi;colon",
    "\\N",
    "\\.",
    "line\r\nwith CRLF",
];

pub fn first_name(rng: &mut Rng) -> &'static str {
    rng.pick(FIRST_NAMES)
}

pub fn last_name(rng: &mut Rng) -> &'static str {
    rng.pick(LAST_NAMES)
}

/// ASCII-only slug of a name for e-mail addresses.
pub fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    if s.is_empty() {
        "user".to_string()
    } else {
        s
    }
}

fn push_word(rng: &mut Rng, out: &mut String) {
    let roll = rng.below(100);
    let w = if roll < 70 {
        rng.pick(WORDS_EN)
    } else if roll < 85 {
        rng.pick(WORDS_DE)
    } else if roll < 95 {
        rng.pick(WORDS_OTHER)
    } else if roll < 98 {
        rng.pick(EMOJI)
    } else {
        rng.pick(ODD_BITS)
    };
    out.push_str(w);
}

/// A sentence of `words` words with punctuation.
pub fn push_sentence(rng: &mut Rng, out: &mut String, words: u64) {
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        push_word(rng, out);
    }
    out.push_str(rng.pick(&[".", ".", ".", "?", "!", "…", "?!"]));
}

/// A message body: mostly short chat lines, some paragraphs, a few long e-mail-like bodies with
/// quoted replies.
pub fn push_message(rng: &mut Rng, out: &mut String) {
    let roll = rng.below(100);
    let (sentences, words) = if roll < 70 {
        (rng.range(1, 2), rng.range(2, 14))
    } else if roll < 97 {
        (rng.range(2, 8), rng.range(6, 18))
    } else {
        (rng.range(10, 60), rng.range(8, 20))
    };
    for s in 0..sentences {
        if s > 0 {
            out.push_str(match rng.below(10) {
                0 => "\n\n",
                1 => "\n",
                2 => "\t",
                _ => " ",
            });
        }
        if sentences > 10 && rng.chance(15) {
            out.push_str("> ");
        }
        push_sentence(rng, out, words);
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::rng::Stream;

    #[test]
    fn messages_mix_scripts_and_awkward_characters() {
        let mut all = String::new();
        for id in 0..2000 {
            let mut rng = Rng::for_row(1, Stream::Message, id);
            push_message(&mut rng, &mut all);
            all.push('\u{1}');
        }
        for needle in ["\\", "\"", "'", "\t", "\n", "ü", "👍", "注文"] {
            assert!(all.contains(needle), "no {needle:?} in generated text");
        }
        assert!(!all.contains('\0'), "PostgreSQL text cannot hold NUL");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        push_json_str(&mut out, "a\"b\\c\nd\u{7}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0007é""#);
    }

    #[test]
    fn slugs_are_ascii() {
        assert_eq!(slug("O'Brien"), "obrien");
        assert_eq!(slug("美咲"), "user");
    }
}
