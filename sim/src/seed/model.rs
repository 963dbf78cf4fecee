//! Facts about single rows, derived from the plan and the row's id alone: which account,
//! inbox and contact a conversation belongs to, how many messages it has and of what kind,
//! which blobs exist. Every table's writer and the attachment writer derive the same facts
//! the same way, which is what keeps references and files consistent without memory.

use std::io;

use super::clock::{HISTORY_SPAN_US, HISTORY_START_US};
use super::plan::{Plan, LABELS_PER_ACCOUNT, LABEL_TITLES};
use super::rng::{mix, Rng, Stream};

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` characters of `alphabet`: random ones first, then the row id passed through a
/// bijection, so two ids never share a token (unique indexes hold without bookkeeping).
fn unique_token(alphabet: &[u8], seed: u64, salt: u64, id: u64, len: usize) -> String {
    let base = alphabet.len() as u64;
    let mut tail = Vec::with_capacity(13);
    let mut v = mix(id ^ mix(seed ^ salt));
    // Enough digits to represent any u64 in this base.
    let digits = if base == 36 { 13 } else { 11 };
    for _ in 0..digits {
        tail.push(alphabet[(v % base) as usize]);
        v /= base;
    }
    let mut rng = Rng::for_row(seed, Stream::Key, mix(salt) ^ id);
    let mut out: Vec<u8> = (0..len.saturating_sub(digits))
        .map(|_| alphabet[rng.below(base) as usize])
        .collect();
    out.extend(tail);
    String::from_utf8(out).expect("alphabet is ASCII")
}

/// Rails `has_secure_token`-style token (base62) unique per `salt` (one salt per column).
pub fn token(seed: u64, salt: u64, id: u64, len: usize) -> String {
    unique_token(BASE62, seed, salt, id, len)
}

/// A UUID whose last 64 bits are a bijection of the id (unique per `salt`).
pub fn uuid(seed: u64, salt: u64, id: u64) -> String {
    let lo = mix(id ^ mix(seed ^ salt));
    let hi = Rng::for_row(seed, Stream::Key, salt ^ id.rotate_left(17)).next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xfff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// Column salts for [`token`] and [`uuid`].
pub mod salt {
    pub const USER_PUBSUB: u64 = 11;
    pub const WIDGET_WEBSITE: u64 = 12;
    pub const WIDGET_HMAC: u64 = 13;
    pub const CONTACT_INBOX_SOURCE: u64 = 14;
    pub const CONTACT_INBOX_PUBSUB: u64 = 15;
    pub const CONVERSATION_UUID: u64 = 16;
    pub const BLOB_KEY: u64 = 17;
}

/// ActiveStorage blob key: 28 lowercase base36 characters, like `SecureRandom.base36(28)`.
pub fn blob_key(seed: u64, blob: u64) -> String {
    unique_token(BASE36, seed, salt::BLOB_KEY, blob, 28)
}

/// The inbox a contact talks through (one `contact_inboxes` row per contact, same id).
pub fn contact_inbox(plan: &Plan, contact: u64) -> u64 {
    let account = plan.account_of_contact(contact);
    let mut rng = Rng::for_row(plan.seed, Stream::Contact, contact);
    account.inboxes.start + rng.below(account.inboxes.end - account.inboxes.start)
}

/// A random user of the account.
fn account_user(rng: &mut Rng, users: &std::ops::Range<u64>) -> u64 {
    users.start + rng.below(users.end - users.start)
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: u64,
    pub account: u64,
    pub inbox: u64,
    pub contact: u64,
    pub display_id: u64,
    /// 0 open, 1 resolved, 2 pending, 3 snoozed
    pub status: u64,
    pub assignee: Option<u64>,
    pub created_us: i64,
    pub last_activity_us: i64,
    pub messages: u64,
    /// Indexes into [`LABEL_TITLES`], distinct.
    pub labels: Vec<usize>,
}

/// How many messages a conversation has: mostly 8-30, some very short, a few very long
/// (mean about 20).
pub fn message_count(rng: &mut Rng) -> u64 {
    match rng.below(100) {
        0..=9 => rng.range(1, 3),
        10..=69 => rng.range(8, 30),
        70..=94 => rng.range(15, 35),
        _ => rng.range(40, 80),
    }
}

pub fn conversation(plan: &Plan, id: u64) -> Conversation {
    let account = plan.account_of_conversation(id);
    let mut rng = Rng::for_row(plan.seed, Stream::Conversation, id);
    let len = account.conversations.end - account.conversations.start;
    let position = id - account.conversations.start;
    let contact = account.contacts.start + rng.below(account.contacts.end - account.contacts.start);
    let created_us = HISTORY_START_US
        + (HISTORY_SPAN_US as i128 * position as i128 / len as i128) as i64
        + rng.below(3_600_000_000) as i64;
    let last_activity_us = created_us + rng.range(60_000_000, 3 * 86_400_000_000) as i64;
    let status = match rng.below(100) {
        0..=11 => 0,
        12..=91 => 1,
        92..=96 => 2,
        _ => 3,
    };
    let assignee = if status == 0 && rng.chance(30) {
        None
    } else {
        Some(account_user(&mut rng, &account.users))
    };
    let messages = message_count(&mut rng);
    let mut labels = Vec::new();
    for _ in 0..rng.below(3) {
        let k = account.id - 1 + rng.below(LABELS_PER_ACCOUNT);
        let title = (k % LABEL_TITLES.len() as u64) as usize;
        if !labels.contains(&title) {
            labels.push(title);
        }
    }
    Conversation {
        id,
        account: account.id,
        inbox: contact_inbox(plan, contact),
        contact,
        display_id: position + 1,
        status,
        assignee,
        created_us,
        last_activity_us,
        messages,
        labels,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Contact(u64),
    User(u64),
    None,
}

#[derive(Debug, Clone)]
pub struct MessageShape {
    /// 0 incoming, 1 outgoing, 2 activity
    pub message_type: u64,
    pub private: bool,
    pub sender: Sender,
    pub created_us: i64,
    pub attachments: u64,
}

/// The shape of message `index` (0-based) of `conv`, cheap enough to recompute in every pass.
pub fn message_shape(plan: &Plan, conv: &Conversation, index: u64, id: u64) -> MessageShape {
    let mut rng = Rng::for_row(plan.seed, Stream::MessageShape, id);
    let span = conv.last_activity_us - conv.created_us;
    let created_us =
        conv.created_us + (span as i128 * index as i128 / conv.messages as i128) as i64;
    let last = index + 1 == conv.messages;
    let roll = rng.below(100);
    let (message_type, private) = if index == 0 {
        (0, false)
    } else if last && conv.status == 1 && conv.messages > 2 {
        (2, false)
    } else if roll < 46 {
        (0, false)
    } else if roll < 92 {
        (1, false)
    } else if roll < 97 {
        (1, true)
    } else {
        (2, false)
    };
    let sender = match message_type {
        0 => Sender::Contact(conv.contact),
        1 => Sender::User(conv.assignee.unwrap_or_else(|| {
            account_user(&mut rng, &plan.accounts[conv.account as usize - 1].users)
        })),
        _ => Sender::None,
    };
    let attachments = if message_type != 2 && rng.below(1000) < 12 {
        if rng.chance(10) {
            2
        } else {
            1
        }
    } else {
        0
    };
    MessageShape {
        message_type,
        private,
        sender,
        created_us,
        attachments,
    }
}

/// Visits every message in id order with its conversation, its id and the id of its first
/// attachment (attachments, blobs and their join rows share ids).
pub fn for_each_message(
    plan: &Plan,
    mut visit: impl FnMut(&Conversation, u64, &MessageShape, u64) -> io::Result<()>,
) -> io::Result<()> {
    let mut message_id = 1;
    let mut attachment_id = 1;
    for c in 1..=plan.conversations {
        let conv = conversation(plan, c);
        for index in 0..conv.messages {
            let shape = message_shape(plan, &conv, index, message_id);
            visit(&conv, message_id, &shape, attachment_id)?;
            message_id += 1;
            attachment_id += shape.attachments;
        }
    }
    Ok(())
}

/// Visits every blob in id order with its message's conversation and the message id.
pub fn for_each_blob(
    plan: &Plan,
    mut visit: impl FnMut(&Conversation, u64, Blob) -> io::Result<()>,
) -> io::Result<()> {
    for_each_message(plan, |conv, message, shape, first| {
        for id in first..first + shape.attachments {
            visit(conv, message, blob(plan.seed, id, shape.created_us))?;
        }
        Ok(())
    })
}

/// Kinds of uploaded files, with what Chatwoot records for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    Jpeg,
    Png,
    Pdf,
    Text,
    Audio,
}

impl BlobKind {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Pdf => "application/pdf",
            Self::Text => "text/plain",
            Self::Audio => "audio/ogg",
        }
    }

    /// `attachments.file_type`: 0 image, 1 audio, 3 file.
    pub fn file_type(self) -> i64 {
        match self {
            Self::Jpeg | Self::Png => 0,
            Self::Audio => 1,
            Self::Pdf | Self::Text => 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Blob {
    pub id: u64,
    pub key: String,
    pub filename: String,
    pub kind: BlobKind,
    pub byte_size: u64,
    pub created_us: i64,
    /// (width, height) for images
    pub dimensions: Option<(u64, u64)>,
}

pub fn blob(seed: u64, id: u64, created_us: i64) -> Blob {
    let mut rng = Rng::for_row(seed, Stream::Blob, id);
    let kind = match rng.below(100) {
        0..=44 => BlobKind::Jpeg,
        45..=69 => BlobKind::Png,
        70..=84 => BlobKind::Pdf,
        85..=94 => BlobKind::Text,
        _ => BlobKind::Audio,
    };
    let byte_size = match kind {
        BlobKind::Text => rng.range(200, 4_000),
        BlobKind::Png => rng.range(2_000, 24_000),
        BlobKind::Jpeg => rng.range(4_000, 32_000),
        BlobKind::Pdf | BlobKind::Audio => rng.range(8_000, 48_000),
    };
    let filename = match kind {
        BlobKind::Jpeg => format!("IMG_{:04}.jpg", rng.range(1, 9999)),
        BlobKind::Png => format!(
            "Bildschirmfoto {:02}-{:02}.png",
            rng.range(1, 28),
            rng.range(1, 12)
        ),
        BlobKind::Pdf => rng
            .pick(&[
                "Rechnung_Nr. 2022-0815.pdf",
                "invoice (1).pdf",
                "Lieferschein Müller & Söhne.pdf",
                "contract_v2 final.pdf",
            ])
            .to_string(),
        BlobKind::Text => rng
            .pick(&["notes.txt", "log 'error'.txt", "ошибка.txt"])
            .to_string(),
        BlobKind::Audio => "voice-message.ogg".to_string(),
    };
    let dimensions = matches!(kind, BlobKind::Jpeg | BlobKind::Png).then(|| {
        (
            rng.pick(&[640, 800, 1280, 1920]),
            rng.pick(&[480, 600, 720, 1080]),
        )
    });
    Blob {
        id,
        key: blob_key(seed, id),
        filename,
        kind,
        byte_size,
        created_us,
        dimensions,
    }
}

/// The file's bytes: a real magic header for its type, then deterministic filler.
pub fn blob_content(seed: u64, blob: &Blob) -> Vec<u8> {
    let header: &[u8] = match blob.kind {
        BlobKind::Jpeg => b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
        BlobKind::Png => b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        BlobKind::Pdf => b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
        BlobKind::Text => b"",
        BlobKind::Audio => b"OggS\x00\x02",
    };
    let size = blob.byte_size as usize;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&header[..header.len().min(size)]);
    let mut rng = Rng::for_row(seed, Stream::BlobContent, blob.id);
    if blob.kind == BlobKind::Text {
        let mut s = String::new();
        while s.len() < size {
            super::text::push_sentence(&mut rng, &mut s, 12);
            s.push('\n');
        }
        // Cut on a byte boundary: text files may end mid-character, as real ones can.
        out.extend_from_slice(&s.as_bytes()[..size]);
    } else {
        let start = out.len();
        out.resize(size, 0);
        rng.fill(&mut out[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_and_keys_are_unique_per_column_and_well_formed() {
        let keys: HashSet<String> = (1..20_000).map(|id| blob_key(1, id)).collect();
        assert_eq!(keys.len(), 19_999);
        assert!(keys
            .iter()
            .all(|k| k.len() == 28 && k.bytes().all(|b| BASE36.contains(&b))));
        let toks: HashSet<String> = (1..20_000)
            .map(|id| token(1, salt::USER_PUBSUB, id, 24))
            .collect();
        assert_eq!(toks.len(), 19_999);
        let u = uuid(1, salt::CONVERSATION_UUID, 5);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn conversations_reference_their_own_accounts_rows() {
        let plan = Plan::for_size(30_000_000, 9);
        for c in (1..=plan.conversations).step_by(37) {
            let conv = conversation(&plan, c);
            let account = &plan.accounts[conv.account as usize - 1];
            assert!(account.contacts.contains(&conv.contact));
            assert!(account.inboxes.contains(&conv.inbox));
            assert!(conv.assignee.is_none_or(|u| account.users.contains(&u)));
            assert!(conv.display_id >= 1);
            assert!(conv.messages >= 1);
        }
    }

    #[test]
    fn message_counts_average_about_twenty() {
        let mut rng = Rng::for_row(1, Stream::Conversation, 0);
        let n = 20_000;
        let total: u64 = (0..n).map(|_| message_count(&mut rng)).sum();
        let mean = total / n;
        assert!((18..=23).contains(&mean), "mean {mean}");
    }

    #[test]
    fn blob_content_has_the_declared_size() {
        for id in 1..200 {
            let b = blob(4, id, 0);
            assert_eq!(blob_content(4, &b).len() as u64, b.byte_size);
        }
    }
}
