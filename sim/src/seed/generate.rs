//! The SQL stream: schema, then one `COPY` block per table (parents first), then sequence
//! values, keys, indexes, foreign keys and triggers. Rows are produced one at a time from the
//! [`Plan`] and written out in chunks, so memory stays flat however large the dataset.

use std::collections::BTreeMap;
use std::io::{self, Write};

use base64::Engine as _;
use md5::{Digest as _, Md5};

use super::clock::HISTORY_START_US;
use super::copy::CopyBlock;
use super::model::{self, salt, Sender};
use super::plan::{Plan, LABELS_PER_ACCOUNT, LABEL_TITLES};
use super::rng::{Rng, Stream};
use super::schema;
use super::text::{self, push_json_str};

/// What a generation wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Rows per table (every table of [`schema::TABLES`]).
    pub rows: BTreeMap<String, u64>,
    /// Bytes of SQL written.
    pub bytes: u64,
    /// Total size of the attachment files the blob rows describe.
    pub attachment_bytes: u64,
}

impl Stats {
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }
}

/// Counts what passes through, for [`Stats::bytes`].
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

const DAY_US: i64 = 86_400_000_000;

/// Writes the whole dataset of `plan` as a psql script into `out`.
pub fn write_plan(plan: &Plan, out: impl Write) -> io::Result<Stats> {
    let mut out = Counting {
        inner: out,
        bytes: 0,
    };
    let mut stats = Stats::default();
    out.write_all(schema::PRELUDE.as_bytes())?;
    out.write_all(schema::PRE_DATA.as_bytes())?;
    out.write_all(b"\n")?;
    let mut count = |table: &str, rows: u64| {
        stats.rows.insert(table.to_string(), rows);
    };
    count("accounts", accounts(plan, &mut out)?);
    count("users", users(plan, &mut out)?);
    count("account_users", account_users(plan, &mut out)?);
    count("channel_web_widgets", web_widgets(plan, &mut out)?);
    count("inboxes", inboxes(plan, &mut out)?);
    count("inbox_members", inbox_members(plan, &mut out)?);
    count("labels", labels(plan, &mut out)?);
    count("contacts", contacts(plan, &mut out)?);
    count("contact_inboxes", contact_inboxes(plan, &mut out)?);
    count("notes", notes(plan, &mut out)?);
    count("conversations", conversations(plan, &mut out)?);
    count("messages", messages(plan, &mut out)?);
    count("attachments", attachments(plan, &mut out)?);
    let (blobs, attachment_bytes) = blobs(plan, &mut out)?;
    count("active_storage_blobs", blobs);
    count(
        "active_storage_attachments",
        storage_attachments(plan, &mut out)?,
    );
    let (taggings, tags) = taggings_and_tags(plan, &mut out)?;
    count("taggings", taggings);
    count("tags", tags);
    count("schema_migrations", schema_migrations(&mut out)?);
    count("ar_internal_metadata", ar_internal_metadata(&mut out)?);
    stats.attachment_bytes = attachment_bytes;

    for (table, seq) in schema::ID_SEQUENCES {
        let n = stats.rows[*table];
        writeln!(
            out,
            "SELECT pg_catalog.setval('public.{seq}', {}, {});",
            n.max(1),
            n > 0
        )?;
    }
    for a in &plan.accounts {
        let n = a.conversations.end - a.conversations.start;
        writeln!(out, "CREATE SEQUENCE public.conv_dpid_seq_{};", a.id)?;
        writeln!(
            out,
            "SELECT pg_catalog.setval('public.conv_dpid_seq_{}', {n}, true);",
            a.id
        )?;
    }
    out.write_all(schema::POST_DATA.as_bytes())?;
    out.flush()?;
    stats.bytes = out.bytes;
    Ok(stats)
}

fn account_name(id: u64) -> (&'static str, &'static str) {
    const NAMES: &[(&str, &str)] = &[
        ("Acme Retail GmbH", "acme"),
        ("Globex Customer Care", "globex"),
        ("Initech Support", "initech"),
        ("Umbrella Versicherung AG", "umbrella"),
        ("Stark Mobility", "stark"),
        ("Wayne Logistics", "wayne"),
    ];
    NAMES[(id as usize - 1) % NAMES.len()]
}

fn accounts<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "accounts",
        &[
            "id",
            "name",
            "created_at",
            "updated_at",
            "locale",
            "domain",
            "support_email",
            "feature_flags",
            "auto_resolve_duration",
            "limits",
            "custom_attributes",
            "status",
        ],
    )?;
    for a in &plan.accounts {
        let mut rng = Rng::for_row(plan.seed, Stream::Account, a.id);
        let (name, slug) = account_name(a.id);
        let created = HISTORY_START_US - rng.range(30, 400) as i64 * DAY_US;
        b.int(a.id as i64)
            .text(name)
            .ts(created)
            .ts(created + rng.range(1, 300) as i64 * DAY_US)
            .int(rng.pick(&[0, 0, 7, 11]))
            .text(&format!("{slug}.example.com"))
            .text(&format!("support@{slug}.example.com"))
            .int(rng.below(1 << 20) as i64)
            .opt_int(rng.chance(50).then_some(7))
            .text(r#"{"agents": 50, "inboxes": 20}"#)
            .text(&format!(
                r#"{{"plan_name": "enterprise", "region": "{}"}}"#,
                rng.pick(&["eu-central", "us-east"])
            ))
            .int(0);
        b.end_row()?;
    }
    b.finish()
}

fn user_name(seed: u64, id: u64) -> String {
    let mut rng = Rng::for_row(seed, Stream::User, id);
    format!(
        "{} {}",
        text::first_name(&mut rng),
        text::last_name(&mut rng)
    )
}

fn users<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "users",
        &[
            "id",
            "provider",
            "uid",
            "encrypted_password",
            "reset_password_token",
            "reset_password_sent_at",
            "remember_created_at",
            "sign_in_count",
            "current_sign_in_at",
            "last_sign_in_at",
            "current_sign_in_ip",
            "last_sign_in_ip",
            "confirmation_token",
            "confirmed_at",
            "confirmation_sent_at",
            "unconfirmed_email",
            "name",
            "display_name",
            "email",
            "tokens",
            "created_at",
            "updated_at",
            "pubsub_token",
            "availability",
            "ui_settings",
            "custom_attributes",
            "type",
            "message_signature",
        ],
    )?;
    for id in 1..=plan.users {
        let name = user_name(plan.seed, id);
        let mut rng = Rng::for_row(plan.seed, Stream::User, id);
        rng.next_u64(); // the name's draws
        rng.next_u64();
        let account = plan.account_of_user(id);
        let (_, domain) = account_name(account.id);
        let first = name.split(' ').next().unwrap_or("agent");
        let email = format!("{}.{id}@{domain}.example.com", text::slug(first));
        let created = HISTORY_START_US - rng.range(1, 200) as i64 * DAY_US;
        let last_sign_in = HISTORY_START_US + rng.below(700) as i64 * DAY_US;
        let ip = format!(
            "10.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            rng.range(1, 254)
        );
        let mut password = String::from("$2a$11$");
        password.push_str(&model::token(plan.seed, 90, id, 53));
        b.int(id as i64)
            .text("email")
            .text(&email)
            .text(&password)
            .null()
            .null()
            .opt_ts(rng.chance(30).then_some(last_sign_in))
            .int(rng.range(1, 900) as i64)
            .ts(last_sign_in)
            .ts(last_sign_in - rng.range(1, 20) as i64 * DAY_US)
            .text(&ip)
            .text(&ip)
            .null()
            .ts(created + 3_600_000_000)
            .ts(created)
            .null()
            .text(&name)
            .opt_text(rng.chance(40).then_some(first))
            .text(&email)
            .null()
            .ts(created)
            .ts(last_sign_in)
            .text(&model::token(plan.seed, salt::USER_PUBSUB, id, 24))
            .int(rng.below(3) as i64)
            .text(&format!(
                r#"{{"is_contact_sidebar_open": {}, "conversation_display_type": "{}", "editor_message_key": "enter"}}"#,
                rng.chance(50),
                rng.pick(&["expanded", "condensed"])
            ))
            .text("{}")
            .opt_text((id == 1).then_some("SuperAdmin"))
            .opt_text(rng.chance(30).then_some(&format!("Best regards,\n{name}\n{}", account_name(account.id).0)));
        b.end_row()?;
    }
    b.finish()
}

fn account_users<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "account_users",
        &[
            "id",
            "account_id",
            "user_id",
            "role",
            "inviter_id",
            "created_at",
            "updated_at",
            "active_at",
            "availability",
            "auto_offline",
        ],
    )?;
    let mut id = 0;
    let mut row =
        |b: &mut CopyBlock<W>, account: u64, user: u64, role: i64, inviter: Option<u64>| {
            id += 1;
            let mut rng = Rng::for_row(plan.seed, Stream::User, user * 1_000 + account);
            let created = HISTORY_START_US - rng.range(1, 100) as i64 * DAY_US;
            b.int(id)
                .int(account as i64)
                .int(user as i64)
                .int(role)
                .opt_int(inviter.map(|i| i as i64))
                .ts(created)
                .ts(created)
                .opt_ts(
                    rng.chance(80)
                        .then_some(created + rng.below(700) as i64 * DAY_US),
                )
                .int(rng.below(3) as i64)
                .bool(rng.chance(90));
            b.end_row()
        };
    for a in &plan.accounts {
        for user in a.users.clone() {
            let admin = user == a.users.start;
            row(
                &mut b,
                a.id,
                user,
                i64::from(admin),
                (!admin).then_some(a.users.start),
            )?;
        }
    }
    // The installation's super admin administers every account.
    for a in plan.accounts.iter().skip(1) {
        row(&mut b, a.id, 1, 1, None)?;
    }
    b.finish()
}

fn web_widgets<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "channel_web_widgets",
        &[
            "id",
            "website_url",
            "account_id",
            "created_at",
            "updated_at",
            "website_token",
            "widget_color",
            "welcome_title",
            "welcome_tagline",
            "feature_flags",
            "reply_time",
            "hmac_token",
            "pre_chat_form_enabled",
            "pre_chat_form_options",
            "hmac_mandatory",
            "continuity_via_email",
        ],
    )?;
    for id in 1..=plan.inboxes {
        let account = plan.account_of_inbox(id);
        let (_, slug) = account_name(account.id);
        let mut rng = Rng::for_row(plan.seed, Stream::Inbox, id);
        let created = HISTORY_START_US - rng.range(1, 30) as i64 * DAY_US;
        b.int(id as i64)
            .text(&format!("https://{}.{slug}.example.com", rng.pick(&["www", "shop", "help", "portal"])))
            .int(account.id as i64)
            .ts(created)
            .ts(created)
            .text(&model::token(plan.seed, salt::WIDGET_WEBSITE, id, 24))
            .text(rng.pick(&["#1f93ff", "#ff5a5f", "#009e60"]))
            .text(rng.pick(&["Hi there! 👋", "Willkommen!", "Need help?"]))
            .text(rng.pick(&["We typically reply in a few minutes.", "Wir antworten in der Regel innerhalb weniger Minuten."]))
            .int(7)
            .int(rng.below(3) as i64)
            .text(&model::token(plan.seed, salt::WIDGET_HMAC, id, 24))
            .bool(rng.chance(50))
            .text(r#"{"pre_chat_fields": [{"name": "emailAddress", "type": "email", "label": "Email Id", "enabled": true, "required": true, "field_type": "standard"}], "pre_chat_message": "Share your queries or comments here."}"#)
            .bool(false)
            .bool(true);
        b.end_row()?;
    }
    b.finish()
}

fn inboxes<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "inboxes",
        &[
            "id",
            "channel_id",
            "account_id",
            "name",
            "created_at",
            "updated_at",
            "channel_type",
            "enable_auto_assignment",
            "greeting_enabled",
            "greeting_message",
            "email_address",
            "working_hours_enabled",
            "out_of_office_message",
            "timezone",
            "enable_email_collect",
            "csat_survey_enabled",
            "allow_messages_after_resolved",
            "auto_assignment_config",
            "lock_to_single_conversation",
        ],
    )?;
    for id in 1..=plan.inboxes {
        let account = plan.account_of_inbox(id);
        let mut rng = Rng::for_row(plan.seed, Stream::Inbox, id);
        let created = HISTORY_START_US - rng.range(1, 30) as i64 * DAY_US;
        let greeting = rng.chance(40);
        b.int(id as i64)
            .int(id as i64)
            .int(account.id as i64)
            .text(&format!(
                "{} {}",
                rng.pick(&["Website", "Shop", "Support", "Kundenservice"]),
                id
            ))
            .ts(created)
            .ts(created)
            .text("Channel::WebWidget")
            .bool(rng.chance(80))
            .bool(greeting)
            .opt_text(greeting.then_some("Hello! How can we help you today?"))
            .null()
            .bool(rng.chance(30))
            .opt_text(
                rng.chance(30)
                    .then_some("We are away right now – we'll get back to you \"soon\"."),
            )
            .text(rng.pick(&["UTC", "Europe/Berlin", "America/New_York"]))
            .bool(true)
            .bool(rng.chance(30))
            .bool(true)
            .text(r#"{"max_assignment_limit": null}"#)
            .bool(false);
        b.end_row()?;
    }
    b.finish()
}

fn inbox_members<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "inbox_members",
        &["id", "user_id", "inbox_id", "created_at", "updated_at"],
    )?;
    let mut id = 0;
    for inbox in 1..=plan.inboxes {
        let account = plan.account_of_inbox(inbox);
        let mut rng = Rng::for_row(plan.seed, Stream::Inbox, inbox ^ (1 << 40));
        for user in account.users.clone() {
            if user != account.users.start && !rng.chance(60) {
                continue;
            }
            id += 1;
            let created = HISTORY_START_US - rng.range(1, 20) as i64 * DAY_US;
            b.int(id)
                .int(user as i64)
                .int(inbox as i64)
                .ts(created)
                .ts(created);
            b.end_row()?;
        }
    }
    b.finish()
}

fn labels<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "labels",
        &[
            "id",
            "title",
            "description",
            "color",
            "show_on_sidebar",
            "account_id",
            "created_at",
            "updated_at",
        ],
    )?;
    for a in &plan.accounts {
        for k in 0..LABELS_PER_ACCOUNT {
            let id = a.labels.start + k;
            let title = LABEL_TITLES[((a.id - 1 + k) % LABEL_TITLES.len() as u64) as usize];
            let mut rng = Rng::for_row(plan.seed, Stream::Label, id);
            let created = HISTORY_START_US + rng.below(30) as i64 * DAY_US;
            b.int(id as i64)
                .text(title)
                .opt_text(
                    rng.chance(70)
                        .then_some(&format!("Conversations about {title}")),
                )
                .text(rng.pick(&["#1f93ff", "#ff0000", "#00ff00", "#b3a1ff"]))
                .bool(rng.chance(60))
                .int(a.id as i64)
                .ts(created)
                .ts(created);
            b.end_row()?;
        }
    }
    b.finish()
}

fn contacts<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "contacts",
        &[
            "id",
            "name",
            "email",
            "phone_number",
            "account_id",
            "created_at",
            "updated_at",
            "additional_attributes",
            "identifier",
            "custom_attributes",
            "last_activity_at",
        ],
    )?;
    let mut json = String::new();
    for id in 1..=plan.contacts {
        let account = plan.account_of_contact(id);
        let mut rng = Rng::for_row(plan.seed, Stream::Contact, id);
        rng.next_u64(); // the inbox draw (model::contact_inbox)
        let first = text::first_name(&mut rng);
        let last = text::last_name(&mut rng);
        let anonymous = rng.chance(15);
        let name = if anonymous {
            format!(
                "{}-{}",
                rng.pick(&["crimson-sky", "quiet-river", "silent-forest", "bold-star"]),
                id
            )
        } else {
            format!("{first} {last}")
        };
        let email = (!anonymous && rng.chance(85)).then(|| {
            format!(
                "{}.{}.{id}@{}",
                text::slug(first),
                text::slug(last),
                rng.pick(&["example.com", "example.de", "mail.example.org"])
            )
        });
        let phone = rng
            .chance(45)
            .then(|| format!("+49 1{:02} {:07}", rng.range(50, 79), id % 10_000_000));
        let created = HISTORY_START_US + rng.below(700) as i64 * DAY_US;
        json.clear();
        json.push_str("{\"city\": ");
        push_json_str(
            &mut json,
            rng.pick(&[
                "Berlin",
                "München",
                "Düsseldorf",
                "Zürich",
                "Wien",
                "New York",
                "São Paulo",
                "Kraków",
            ]),
        );
        json.push_str(", \"country\": ");
        push_json_str(
            &mut json,
            rng.pick(&[
                "Germany",
                "Switzerland",
                "Austria",
                "United States",
                "Brazil",
                "Poland",
            ]),
        );
        if rng.chance(30) {
            json.push_str(", \"company_name\": ");
            push_json_str(
                &mut json,
                rng.pick(&[
                    "Müller & Söhne KG",
                    "O'Reilly \"Books\"",
                    "ACME\\Corp",
                    "Tab\tSeparated Ltd",
                ]),
            );
        }
        if rng.chance(20) {
            json.push_str(", \"description\": ");
            let mut d = String::new();
            text::push_sentence(&mut rng, &mut d, 10);
            push_json_str(&mut json, &d);
        }
        json.push_str(", \"created_at_ip\": \"192.0.2.");
        json.push_str(&rng.range(1, 254).to_string());
        json.push_str("\"}");
        b.int(id as i64)
            .text(&name)
            .opt_text(email.as_deref())
            .opt_text(phone.as_deref())
            .int(account.id as i64)
            .ts(created)
            .ts(created + rng.below(100) as i64 * DAY_US)
            .text(&json)
            .opt_text(rng.chance(30).then_some(&format!("crm-{id:08}")))
            .text(if rng.chance(25) {
                r#"{"customer_tier": "gold", "newsletter": true, "order_count": 12}"#
            } else {
                "{}"
            })
            .opt_ts(
                rng.chance(90)
                    .then_some(created + rng.below(200) as i64 * DAY_US),
            );
        b.end_row()?;
    }
    b.finish()
}

fn contact_inboxes<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "contact_inboxes",
        &[
            "id",
            "contact_id",
            "inbox_id",
            "source_id",
            "created_at",
            "updated_at",
            "hmac_verified",
            "pubsub_token",
        ],
    )?;
    for id in 1..=plan.contacts {
        let inbox = model::contact_inbox(plan, id);
        let created = HISTORY_START_US + (id as i64 % 700) * DAY_US;
        b.int(id as i64)
            .int(id as i64)
            .int(inbox as i64)
            .plain(&model::uuid(plan.seed, salt::CONTACT_INBOX_SOURCE, id))
            .ts(created)
            .ts(created)
            .bool(id % 7 == 0)
            .text(&model::token(plan.seed, salt::CONTACT_INBOX_PUBSUB, id, 24));
        b.end_row()?;
    }
    b.finish()
}

fn notes<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "notes",
        &[
            "id",
            "content",
            "account_id",
            "contact_id",
            "user_id",
            "created_at",
            "updated_at",
        ],
    )?;
    let mut id = 0;
    let mut content = String::new();
    for contact in 1..=plan.contacts {
        let mut rng = Rng::for_row(plan.seed, Stream::Note, contact);
        if !rng.chance(5) {
            continue;
        }
        let account = plan.account_of_contact(contact);
        id += 1;
        content.clear();
        text::push_message(&mut rng, &mut content);
        let created = HISTORY_START_US + rng.below(700) as i64 * DAY_US;
        let user = account.users.start + rng.below(account.users.end - account.users.start);
        b.int(id)
            .text(&content)
            .int(account.id as i64)
            .int(contact as i64)
            .opt_int(rng.chance(95).then_some(user as i64))
            .ts(created)
            .ts(created);
        b.end_row()?;
    }
    b.finish()
}

fn conversations<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "conversations",
        &[
            "id",
            "account_id",
            "inbox_id",
            "status",
            "assignee_id",
            "created_at",
            "updated_at",
            "contact_id",
            "display_id",
            "contact_last_seen_at",
            "agent_last_seen_at",
            "additional_attributes",
            "contact_inbox_id",
            "uuid",
            "identifier",
            "last_activity_at",
            "team_id",
            "campaign_id",
            "snoozed_until",
            "custom_attributes",
            "assignee_last_seen_at",
            "first_reply_created_at",
            "priority",
        ],
    )?;
    let mut json = String::new();
    for id in 1..=plan.conversations {
        let c = model::conversation(plan, id);
        let mut rng = Rng::for_row(plan.seed, Stream::Conversation, id ^ (1 << 50));
        json.clear();
        json.push_str(r#"{"browser": {"device_name": ""#);
        json.push_str(rng.pick(&["Macintosh", "iPhone", "Unknown", "Samsung SM-G991B"]));
        json.push_str(r#"", "browser_name": ""#);
        json.push_str(rng.pick(&["Chrome", "Firefox", "Safari", "Edge"]));
        json.push_str(r#"", "platform_name": ""#);
        json.push_str(rng.pick(&["macOS", "Windows", "iOS", "Android", "Linux"]));
        json.push_str(&format!(
            r#"", "browser_version": "{}.0.{}.{}", "platform_version": "{}"}}, "referer": "#,
            rng.range(90, 120),
            rng.below(6000),
            rng.below(200),
            rng.range(10, 16)
        ));
        push_json_str(
            &mut json,
            &format!(
                "https://shop.example.com/{}?lang=de&q=gr%C3%B6%C3%9Fe&ref={id}",
                rng.pick(&["checkout", "produkte/schuhe", "help/faq", "konto"])
            ),
        );
        json.push_str(r#", "initiated_at": {"timestamp": ""#);
        json.push_str(&format!("{}", c.created_us / 1_000_000));
        json.push_str(r#""}}"#);
        let first_reply = c
            .assignee
            .map(|_| c.created_us + rng.range(30, 7_200) as i64 * 1_000_000);
        b.int(id as i64)
            .int(c.account as i64)
            .int(c.inbox as i64)
            .int(c.status as i64)
            .opt_int(c.assignee.map(|u| u as i64))
            .ts(c.created_us)
            .ts(c.last_activity_us)
            .int(c.contact as i64)
            .int(c.display_id as i64)
            .opt_ts(rng.chance(80).then_some(c.last_activity_us - 1_000_000))
            .opt_ts(c.assignee.map(|_| c.last_activity_us))
            .text(&json)
            .int(c.contact as i64)
            .plain(&model::uuid(plan.seed, salt::CONVERSATION_UUID, id))
            .null()
            .ts(c.last_activity_us)
            .null()
            .null()
            .opt_ts((c.status == 3).then_some(c.last_activity_us + 2 * DAY_US))
            .text(if rng.chance(10) {
                r#"{"order_id": "A-4711", "priority_customer": true}"#
            } else {
                "{}"
            })
            .opt_ts(c.assignee.map(|_| c.last_activity_us))
            .opt_ts(first_reply)
            .opt_int(rng.chance(20).then(|| rng.below(4) as i64));
        b.end_row()?;
    }
    b.finish()
}

fn messages<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "messages",
        &[
            "id",
            "content",
            "account_id",
            "inbox_id",
            "conversation_id",
            "message_type",
            "created_at",
            "updated_at",
            "private",
            "status",
            "source_id",
            "content_type",
            "content_attributes",
            "sender_type",
            "sender_id",
            "external_source_ids",
            "additional_attributes",
        ],
    )?;
    let mut content = String::new();
    model::for_each_message(plan, |conv, id, shape, _| {
        let mut rng = Rng::for_row(plan.seed, Stream::Message, id);
        content.clear();
        let mut content_type = 0;
        let mut attributes = "{}".to_string();
        let has_content = match shape.message_type {
            2 => {
                let agent = conv.assignee.unwrap_or(1);
                let verb = if conv.status == 1 {
                    "marked resolved"
                } else {
                    "assigned"
                };
                content.push_str(&format!(
                    "Conversation was {verb} by {}",
                    user_name(plan.seed, agent)
                ));
                true
            }
            _ if shape.attachments > 0 && rng.chance(50) => false,
            _ => {
                text::push_message(&mut rng, &mut content);
                if shape.message_type == 1 && !shape.private && rng.chance(2) {
                    content_type = 9;
                    attributes = format!(
                        r#"{{"submitted_values": {{"csat_survey_response": {{"rating": {}, "feedback_message": "Danke – \"super\" Service!"}}}}}}"#,
                        rng.range(1, 5)
                    );
                } else if id > 1 && rng.chance(8) {
                    attributes = format!(
                        r#"{{"in_reply_to": {}, "in_reply_to_external_id": null}}"#,
                        id - 1
                    );
                }
                true
            }
        };
        let (sender_type, sender_id) = match shape.sender {
            Sender::Contact(c) => (Some("Contact"), Some(c as i64)),
            Sender::User(u) => (Some("User"), Some(u as i64)),
            Sender::None => (None, None),
        };
        b.int(id as i64)
            .opt_text(has_content.then_some(content.as_str()))
            .int(conv.account as i64)
            .int(conv.inbox as i64)
            .int(conv.id as i64)
            .int(shape.message_type as i64)
            .ts(shape.created_us)
            .ts(shape.created_us + rng.below(5_000_000) as i64)
            .bool(shape.private)
            .int(if shape.message_type == 1 {
                rng.below(3) as i64
            } else {
                0
            })
            .opt_text(
                rng.chance(10)
                    .then(|| format!("msg_{}", model::token(plan.seed, 91, id, 20)))
                    .as_deref(),
            )
            .int(content_type)
            .text(&attributes)
            .opt_text(sender_type)
            .opt_int(sender_id)
            .text("{}")
            .text(if rng.chance(3) {
                r#"{"campaign_id": null, "ignore_automation_rules": true}"#
            } else {
                "{}"
            });
        b.end_row()
    })?;
    b.finish()
}

fn attachments<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "attachments",
        &[
            "id",
            "file_type",
            "external_url",
            "coordinates_lat",
            "coordinates_long",
            "message_id",
            "account_id",
            "created_at",
            "updated_at",
            "fallback_title",
            "extension",
            "meta",
        ],
    )?;
    model::for_each_blob(plan, |conv, message, blob| {
        let mut rng = Rng::for_row(plan.seed, Stream::Blob, blob.id ^ (1 << 45));
        // Geotagged photos: coordinates with few decimals print identically on every
        // PostgreSQL version's float output.
        let (lat, long) = if blob.kind.file_type() == 0 && rng.chance(10) {
            (
                format!("{}.{:04}", rng.range(35, 60), rng.below(10_000)),
                format!("{}.{:04}", rng.range(0, 25), rng.below(10_000)),
            )
        } else {
            ("0".to_string(), "0".to_string())
        };
        b.int(blob.id as i64)
            .int(blob.kind.file_type())
            .null()
            .plain(&lat)
            .plain(&long)
            .int(message as i64)
            .int(conv.account as i64)
            .ts(blob.created_us)
            .ts(blob.created_us)
            .null()
            .null()
            .text("{}");
        b.end_row()
    })?;
    b.finish()
}

/// ActiveStorage's checksum: the base64 of the file's MD5 digest.
pub fn active_storage_checksum(content: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(content))
}

fn blobs<W: Write>(plan: &Plan, out: &mut W) -> io::Result<(u64, u64)> {
    let mut b = CopyBlock::begin(
        out,
        "active_storage_blobs",
        &[
            "id",
            "key",
            "filename",
            "content_type",
            "metadata",
            "byte_size",
            "checksum",
            "created_at",
            "service_name",
        ],
    )?;
    let mut bytes = 0;
    model::for_each_blob(plan, |_, _, blob| {
        let content = model::blob_content(plan.seed, &blob);
        bytes += content.len() as u64;
        let metadata = match blob.dimensions {
            Some((w, h)) => {
                format!(r#"{{"identified":true,"width":{w},"height":{h},"analyzed":true}}"#)
            }
            None => r#"{"identified":true,"analyzed":true}"#.to_string(),
        };
        b.int(blob.id as i64)
            .plain(&blob.key)
            .text(&blob.filename)
            .text(blob.kind.content_type())
            .text(&metadata)
            .int(blob.byte_size as i64)
            .text(&active_storage_checksum(&content))
            .ts(blob.created_us)
            .text("local");
        b.end_row()
    })?;
    Ok((b.finish()?, bytes))
}

fn storage_attachments<W: Write>(plan: &Plan, out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "active_storage_attachments",
        &[
            "id",
            "name",
            "record_type",
            "record_id",
            "blob_id",
            "created_at",
        ],
    )?;
    model::for_each_blob(plan, |_, _, blob| {
        b.int(blob.id as i64)
            .text("file")
            .text("Attachment")
            .int(blob.id as i64)
            .int(blob.id as i64)
            .ts(blob.created_us);
        b.end_row()
    })?;
    b.finish()
}

/// Conversation labels (acts-as-taggable `taggings`, context `labels`) and the shared `tags`
/// with their counter cache, written after the taggings so the counts are known.
fn taggings_and_tags<W: Write>(plan: &Plan, out: &mut W) -> io::Result<(u64, u64)> {
    let mut b = CopyBlock::begin(
        out,
        "taggings",
        &[
            "id",
            "tag_id",
            "taggable_type",
            "taggable_id",
            "tagger_type",
            "tagger_id",
            "context",
            "created_at",
        ],
    )?;
    let mut counts = vec![0i64; LABEL_TITLES.len()];
    let mut id = 0;
    for c in 1..=plan.conversations {
        let conv = model::conversation(plan, c);
        for &title in &conv.labels {
            id += 1;
            counts[title] += 1;
            b.int(id)
                .int(title as i64 + 1)
                .text("Conversation")
                .int(c as i64)
                .null()
                .null()
                .text("labels")
                .ts(conv.created_us + 60_000_000);
            b.end_row()?;
        }
    }
    let taggings = b.finish()?;
    let mut b = CopyBlock::begin(out, "tags", &["id", "name", "taggings_count"])?;
    if !plan.accounts.is_empty() {
        for (i, title) in LABEL_TITLES.iter().enumerate() {
            b.int(i as i64 + 1).text(title).int(counts[i]);
            b.end_row()?;
        }
    }
    Ok((taggings, b.finish()?))
}

fn schema_migrations<W: Write>(out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(out, "schema_migrations", &["version"])?;
    for v in schema::SCHEMA_MIGRATIONS {
        b.plain(v);
        b.end_row()?;
    }
    b.finish()
}

fn ar_internal_metadata<W: Write>(out: &mut W) -> io::Result<u64> {
    let mut b = CopyBlock::begin(
        out,
        "ar_internal_metadata",
        &["key", "value", "created_at", "updated_at"],
    )?;
    b.text("environment")
        .text("production")
        .ts(HISTORY_START_US - 400 * DAY_US)
        .ts(HISTORY_START_US - 400 * DAY_US);
    b.end_row()?;
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Sha256;

    fn digest(plan: &Plan) -> (Stats, Vec<u8>) {
        let mut hasher = HashWriter(Sha256::new());
        let stats = write_plan(plan, &mut hasher).unwrap();
        (stats, hasher.0.finalize().to_vec())
    }

    struct HashWriter(Sha256);
    impl Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
        let (s1, d1) = digest(&Plan::for_size(3_000_000, 1));
        let (s2, d2) = digest(&Plan::for_size(3_000_000, 1));
        let (s3, d3) = digest(&Plan::for_size(3_000_000, 2));
        assert_eq!(d1, d2);
        assert_eq!(s1, s2);
        assert_ne!(d1, d3);
        assert_ne!(s1.rows["messages"], 0);
        assert_ne!(
            s1.rows, s3.rows,
            "another seed should also change the shape"
        );
    }

    #[test]
    fn the_stream_is_about_the_requested_size_with_realistic_ratios() {
        let target = 8_000_000;
        let (stats, _) = digest(&Plan::for_size(target, 5));
        let ratio = stats.bytes as f64 / target as f64;
        assert!(
            (0.85..1.15).contains(&ratio),
            "wrote {} bytes for {target} (ratio {ratio:.3})",
            stats.bytes
        );
        let r = &stats.rows;
        let per_conv = r["messages"] as f64 / r["conversations"] as f64;
        assert!(
            (17.0..24.0).contains(&per_conv),
            "{per_conv} messages per conversation"
        );
        assert!(r["contacts"] < r["conversations"] && r["contacts"] * 2 > r["conversations"]);
        assert!(r["accounts"] <= 6 && (10..=120).contains(&r["users"]));
        assert_eq!(r["active_storage_blobs"], r["attachments"]);
        assert_eq!(r["active_storage_attachments"], r["attachments"]);
        assert!(r["attachments"] > 0 && r["taggings"] > 0 && r["notes"] > 0);
        assert_eq!(
            r["schema_migrations"] as usize,
            schema::SCHEMA_MIGRATIONS.len()
        );
    }

    #[test]
    fn an_empty_plan_still_writes_the_schema_and_migrations() {
        let mut out = Vec::new();
        let stats = write_plan(&Plan::for_size(0, 1), &mut out).unwrap();
        assert_eq!(stats.rows["messages"], 0);
        assert_eq!(stats.rows["tags"], 0);
        let sql = String::from_utf8(out).unwrap();
        assert!(sql.contains("CREATE TABLE public.messages ("));
        assert!(sql.contains(schema::SCHEMA_VERSION));
        assert!(sql.contains("SELECT pg_catalog.setval('public.messages_id_seq', 1, false);"));
    }

    #[test]
    fn checksums_are_base64_md5_as_active_storage_stores_them() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(active_storage_checksum(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
