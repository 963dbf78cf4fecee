//! The Live Agent (Chatwoot) schema as SQL, split the way `pg_dump` splits it: what must exist
//! before the data (extensions, functions, tables with their sequences) and what is faster to
//! build after it (primary keys, indexes, foreign keys, triggers).
//!
//! Columns, types, defaults and index names follow upstream Chatwoot's `db/schema.rb` of the
//! 2022/2023 releases the Live Agent 4.4x fork is based on (`id: :serial` tables keep `integer`
//! ids, the others `bigint`; `datetime` is `timestamp without time zone`; enums are integers).
//! Upstream declares only a few foreign keys; the ones marked "integrity" below are additions
//! so that loading the seed proves the generated references are consistent.
//! Chatwoot's trigram index on `messages.content` is left out on purpose: it holds no data,
//! and building it dominates load time at several GB.

/// The newest entry of [`SCHEMA_MIGRATIONS`]: `max(version)` of a seeded database.
pub const SCHEMA_VERSION: &str = "20230112103216";

/// `schema_migrations` rows in Rails' format. The first entries are upstream Chatwoot's
/// squashed initial migrations; the rest are dated entries in the same format, ending at
/// [`SCHEMA_VERSION`].
pub const SCHEMA_MIGRATIONS: &[&str] = &[
    "20200225162150",
    "20200225172811",
    "20200226194012",
    "20200303211131",
    "20200309170810",
    "20200331095710",
    "20200418124534",
    "20200429082655",
    "20200504144712",
    "20200605130625",
    "20200627115105",
    "20200709145000",
    "20200715124113",
    "20200725131651",
    "20200802170002",
    "20200819190629",
    "20200907094912",
    "20201011152227",
    "20201027135006",
    "20201123195011",
    "20201218125022",
    "20210105185632",
    "20210212154240",
    "20210315101919",
    "20210428135041",
    "20210527173755",
    "20210618073042",
    "20210723094412",
    "20210822124608",
    "20210927062350",
    "20211027073553",
    "20211116131740",
    "20211219031453",
    "20220111200105",
    "20220216151613",
    "20220309083409",
    "20220416205519",
    "20220511072655",
    "20220622090344",
    "20220718123938",
    "20220809104508",
    "20220916071046",
    "20221013112313",
    "20221114124035",
    "20221219162759",
    SCHEMA_VERSION,
];

/// Every table the seed writes, parents first (the order rows are written in).
pub const TABLES: &[&str] = &[
    "accounts",
    "users",
    "account_users",
    "channel_web_widgets",
    "inboxes",
    "inbox_members",
    "labels",
    "contacts",
    "contact_inboxes",
    "notes",
    "conversations",
    "messages",
    "attachments",
    "active_storage_blobs",
    "active_storage_attachments",
    "taggings",
    "tags",
    "schema_migrations",
    "ar_internal_metadata",
];

/// Tables with a serial `id` and the name of its sequence.
pub const ID_SEQUENCES: &[(&str, &str)] = &[
    ("accounts", "accounts_id_seq"),
    ("users", "users_id_seq"),
    ("account_users", "account_users_id_seq"),
    ("channel_web_widgets", "channel_web_widgets_id_seq"),
    ("inboxes", "inboxes_id_seq"),
    ("inbox_members", "inbox_members_id_seq"),
    ("labels", "labels_id_seq"),
    ("contacts", "contacts_id_seq"),
    ("contact_inboxes", "contact_inboxes_id_seq"),
    ("notes", "notes_id_seq"),
    ("conversations", "conversations_id_seq"),
    ("messages", "messages_id_seq"),
    ("attachments", "attachments_id_seq"),
    ("active_storage_blobs", "active_storage_blobs_id_seq"),
    (
        "active_storage_attachments",
        "active_storage_attachments_id_seq",
    ),
    ("taggings", "taggings_id_seq"),
    ("tags", "tags_id_seq"),
];

/// Session settings, as at the top of a `pg_dump` script.
pub const PRELUDE: &str = "\
SET statement_timeout = 0;
SET lock_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET client_min_messages = warning;
SET row_security = off;
";

/// Extensions, trigger functions and tables (no indexes or constraints besides NOT NULL).
pub const PRE_DATA: &str = r#"
-- On an empty database the Live Agent migration Job (`rails db:chatwoot_prepare`) leaves only
-- the Rails schema markers; the seed brings its own. Any other existing table makes the
-- CREATE TABLEs below fail, so real data is never touched.
DROP TABLE IF EXISTS public.schema_migrations;
DROP TABLE IF EXISTS public.ar_internal_metadata;

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;

-- Per-account conversation numbering, as Chatwoot's hair_trigger migrations define it.
CREATE FUNCTION public.accounts_after_insert_row_tr() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    execute format('create sequence IF NOT EXISTS conv_dpid_seq_%s', NEW.id);
    RETURN NULL;
END;
$$;

CREATE FUNCTION public.conversations_before_insert_row_tr() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.display_id := nextval('conv_dpid_seq_' || NEW.account_id);
    RETURN NEW;
END;
$$;

CREATE TABLE public.accounts (
    id serial NOT NULL,
    name character varying NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    locale integer DEFAULT 0,
    domain character varying(100),
    support_email character varying(100),
    feature_flags bigint DEFAULT 0 NOT NULL,
    auto_resolve_duration integer,
    limits jsonb DEFAULT '{}'::jsonb,
    custom_attributes jsonb DEFAULT '{}'::jsonb,
    status integer DEFAULT 0
);

CREATE TABLE public.users (
    id serial NOT NULL,
    provider character varying DEFAULT 'email'::character varying NOT NULL,
    uid character varying DEFAULT ''::character varying NOT NULL,
    encrypted_password character varying DEFAULT ''::character varying NOT NULL,
    reset_password_token character varying,
    reset_password_sent_at timestamp without time zone,
    remember_created_at timestamp without time zone,
    sign_in_count integer DEFAULT 0 NOT NULL,
    current_sign_in_at timestamp without time zone,
    last_sign_in_at timestamp without time zone,
    current_sign_in_ip character varying,
    last_sign_in_ip character varying,
    confirmation_token character varying,
    confirmed_at timestamp without time zone,
    confirmation_sent_at timestamp without time zone,
    unconfirmed_email character varying,
    name character varying NOT NULL,
    display_name character varying,
    email character varying,
    tokens json,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    pubsub_token character varying,
    availability integer DEFAULT 0,
    ui_settings jsonb DEFAULT '{}'::jsonb,
    custom_attributes jsonb DEFAULT '{}'::jsonb,
    type character varying,
    message_signature text
);

CREATE TABLE public.account_users (
    id bigserial NOT NULL,
    account_id bigint,
    user_id bigint,
    role integer DEFAULT 0,
    inviter_id bigint,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL,
    active_at timestamp without time zone,
    availability integer DEFAULT 0 NOT NULL,
    auto_offline boolean DEFAULT true NOT NULL
);

CREATE TABLE public.channel_web_widgets (
    id serial NOT NULL,
    website_url character varying,
    account_id integer,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    website_token character varying,
    widget_color character varying DEFAULT '#1f93ff'::character varying,
    welcome_title character varying,
    welcome_tagline character varying,
    feature_flags integer DEFAULT 7 NOT NULL,
    reply_time integer DEFAULT 0,
    hmac_token character varying,
    pre_chat_form_enabled boolean DEFAULT false,
    pre_chat_form_options jsonb DEFAULT '{}'::jsonb,
    hmac_mandatory boolean DEFAULT false,
    continuity_via_email boolean DEFAULT true NOT NULL
);

CREATE TABLE public.inboxes (
    id serial NOT NULL,
    channel_id integer NOT NULL,
    account_id integer NOT NULL,
    name character varying NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    channel_type character varying,
    enable_auto_assignment boolean DEFAULT true,
    greeting_enabled boolean DEFAULT false,
    greeting_message character varying,
    email_address character varying,
    working_hours_enabled boolean DEFAULT false,
    out_of_office_message character varying,
    timezone character varying DEFAULT 'UTC'::character varying,
    enable_email_collect boolean DEFAULT true,
    csat_survey_enabled boolean DEFAULT false,
    allow_messages_after_resolved boolean DEFAULT true,
    auto_assignment_config jsonb DEFAULT '{}'::jsonb,
    lock_to_single_conversation boolean DEFAULT false NOT NULL
);

CREATE TABLE public.inbox_members (
    id serial NOT NULL,
    user_id integer NOT NULL,
    inbox_id integer NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);

CREATE TABLE public.labels (
    id bigserial NOT NULL,
    title character varying,
    description text,
    color character varying DEFAULT '#1f93ff'::character varying NOT NULL,
    show_on_sidebar boolean,
    account_id bigint,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL
);

CREATE TABLE public.contacts (
    id serial NOT NULL,
    name character varying DEFAULT ''::character varying,
    email character varying,
    phone_number character varying,
    account_id integer NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    additional_attributes jsonb DEFAULT '{}'::jsonb,
    identifier character varying,
    custom_attributes jsonb DEFAULT '{}'::jsonb,
    last_activity_at timestamp without time zone
);

CREATE TABLE public.contact_inboxes (
    id bigserial NOT NULL,
    contact_id bigint,
    inbox_id bigint,
    source_id character varying NOT NULL,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL,
    hmac_verified boolean DEFAULT false,
    pubsub_token character varying
);

CREATE TABLE public.notes (
    id bigserial NOT NULL,
    content text NOT NULL,
    account_id bigint NOT NULL,
    contact_id bigint NOT NULL,
    user_id bigint,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL
);

CREATE TABLE public.conversations (
    id serial NOT NULL,
    account_id integer NOT NULL,
    inbox_id integer NOT NULL,
    status integer DEFAULT 0 NOT NULL,
    assignee_id integer,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    contact_id bigint,
    display_id integer NOT NULL,
    contact_last_seen_at timestamp without time zone,
    agent_last_seen_at timestamp without time zone,
    additional_attributes jsonb DEFAULT '{}'::jsonb,
    contact_inbox_id bigint,
    uuid uuid DEFAULT public.gen_random_uuid() NOT NULL,
    identifier character varying,
    last_activity_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    team_id bigint,
    campaign_id bigint,
    snoozed_until timestamp without time zone,
    custom_attributes jsonb DEFAULT '{}'::jsonb,
    assignee_last_seen_at timestamp without time zone,
    first_reply_created_at timestamp without time zone,
    priority integer
);

CREATE TABLE public.messages (
    id serial NOT NULL,
    content text,
    account_id integer NOT NULL,
    inbox_id integer NOT NULL,
    conversation_id integer NOT NULL,
    message_type integer NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    private boolean DEFAULT false NOT NULL,
    status integer DEFAULT 0,
    source_id character varying,
    content_type integer DEFAULT 0 NOT NULL,
    content_attributes json DEFAULT '{}'::json,
    sender_type character varying,
    sender_id bigint,
    external_source_ids jsonb DEFAULT '{}'::jsonb,
    additional_attributes jsonb DEFAULT '{}'::jsonb
);

CREATE TABLE public.attachments (
    id serial NOT NULL,
    file_type integer DEFAULT 0,
    external_url character varying,
    coordinates_lat double precision DEFAULT 0.0,
    coordinates_long double precision DEFAULT 0.0,
    message_id integer NOT NULL,
    account_id integer NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    fallback_title character varying,
    extension character varying,
    meta jsonb DEFAULT '{}'::jsonb
);

CREATE TABLE public.active_storage_blobs (
    id bigserial NOT NULL,
    key character varying NOT NULL,
    filename character varying NOT NULL,
    content_type character varying,
    metadata text,
    byte_size bigint NOT NULL,
    checksum character varying,
    created_at timestamp without time zone NOT NULL,
    service_name character varying NOT NULL
);

CREATE TABLE public.active_storage_attachments (
    id bigserial NOT NULL,
    name character varying NOT NULL,
    record_type character varying NOT NULL,
    record_id bigint NOT NULL,
    blob_id bigint NOT NULL,
    created_at timestamp without time zone NOT NULL
);

CREATE TABLE public.taggings (
    id serial NOT NULL,
    tag_id integer,
    taggable_type character varying,
    taggable_id integer,
    tagger_type character varying,
    tagger_id integer,
    context character varying(128),
    created_at timestamp without time zone
);

CREATE TABLE public.tags (
    id serial NOT NULL,
    name character varying,
    taggings_count integer DEFAULT 0
);

CREATE TABLE public.schema_migrations (
    version character varying NOT NULL
);

CREATE TABLE public.ar_internal_metadata (
    key character varying NOT NULL,
    value character varying,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL
);
"#;

/// Keys, indexes, foreign keys and triggers, built once the rows are in.
pub const POST_DATA: &str = r#"
ALTER TABLE ONLY public.accounts ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.users ADD CONSTRAINT users_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.account_users ADD CONSTRAINT account_users_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.channel_web_widgets ADD CONSTRAINT channel_web_widgets_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.inboxes ADD CONSTRAINT inboxes_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.inbox_members ADD CONSTRAINT inbox_members_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.labels ADD CONSTRAINT labels_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.contacts ADD CONSTRAINT contacts_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.contact_inboxes ADD CONSTRAINT contact_inboxes_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.notes ADD CONSTRAINT notes_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.conversations ADD CONSTRAINT conversations_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.messages ADD CONSTRAINT messages_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.attachments ADD CONSTRAINT attachments_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.active_storage_blobs ADD CONSTRAINT active_storage_blobs_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.active_storage_attachments ADD CONSTRAINT active_storage_attachments_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.taggings ADD CONSTRAINT taggings_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.tags ADD CONSTRAINT tags_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.schema_migrations ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);
ALTER TABLE ONLY public.ar_internal_metadata ADD CONSTRAINT ar_internal_metadata_pkey PRIMARY KEY (key);

CREATE INDEX index_users_on_email ON public.users USING btree (email);
CREATE UNIQUE INDEX index_users_on_pubsub_token ON public.users USING btree (pubsub_token);
CREATE UNIQUE INDEX index_users_on_reset_password_token ON public.users USING btree (reset_password_token);
CREATE UNIQUE INDEX index_users_on_uid_and_provider ON public.users USING btree (uid, provider);
CREATE UNIQUE INDEX uniq_user_id_per_account_id ON public.account_users USING btree (account_id, user_id);
CREATE INDEX index_account_users_on_account_id ON public.account_users USING btree (account_id);
CREATE INDEX index_account_users_on_user_id ON public.account_users USING btree (user_id);
CREATE UNIQUE INDEX index_channel_web_widgets_on_hmac_token ON public.channel_web_widgets USING btree (hmac_token);
CREATE UNIQUE INDEX index_channel_web_widgets_on_website_token ON public.channel_web_widgets USING btree (website_token);
CREATE INDEX index_inboxes_on_account_id ON public.inboxes USING btree (account_id);
CREATE INDEX index_inboxes_on_channel_id_and_channel_type ON public.inboxes USING btree (channel_id, channel_type);
CREATE UNIQUE INDEX index_inbox_members_on_inbox_id_and_user_id ON public.inbox_members USING btree (inbox_id, user_id);
CREATE INDEX index_inbox_members_on_inbox_id ON public.inbox_members USING btree (inbox_id);
CREATE INDEX index_labels_on_account_id ON public.labels USING btree (account_id);
CREATE UNIQUE INDEX index_labels_on_title_and_account_id ON public.labels USING btree (title, account_id);
CREATE INDEX index_contacts_on_account_id ON public.contacts USING btree (account_id);
CREATE INDEX index_contacts_on_lower_email_account_id ON public.contacts USING btree (lower((email)::text), account_id);
CREATE INDEX index_contacts_on_phone_number_and_account_id ON public.contacts USING btree (phone_number, account_id);
CREATE UNIQUE INDEX uniq_email_per_account_contact ON public.contacts USING btree (email, account_id);
CREATE UNIQUE INDEX uniq_identifier_per_account_contact ON public.contacts USING btree (identifier, account_id);
CREATE INDEX index_contacts_on_name_email_phone_number_identifier ON public.contacts USING gin (name public.gin_trgm_ops, email public.gin_trgm_ops, phone_number public.gin_trgm_ops, identifier public.gin_trgm_ops);
CREATE INDEX index_contact_inboxes_on_contact_id ON public.contact_inboxes USING btree (contact_id);
CREATE UNIQUE INDEX index_contact_inboxes_on_inbox_id_and_source_id ON public.contact_inboxes USING btree (inbox_id, source_id);
CREATE INDEX index_contact_inboxes_on_inbox_id ON public.contact_inboxes USING btree (inbox_id);
CREATE UNIQUE INDEX index_contact_inboxes_on_pubsub_token ON public.contact_inboxes USING btree (pubsub_token);
CREATE INDEX index_contact_inboxes_on_source_id ON public.contact_inboxes USING btree (source_id);
CREATE INDEX index_notes_on_account_id ON public.notes USING btree (account_id);
CREATE INDEX index_notes_on_contact_id ON public.notes USING btree (contact_id);
CREATE INDEX index_notes_on_user_id ON public.notes USING btree (user_id);
CREATE UNIQUE INDEX index_conversations_on_account_id_and_display_id ON public.conversations USING btree (account_id, display_id);
CREATE INDEX index_conversations_on_account_id ON public.conversations USING btree (account_id);
CREATE INDEX index_conversations_on_assignee_id_and_account_id ON public.conversations USING btree (assignee_id, account_id);
CREATE INDEX index_conversations_on_contact_id ON public.conversations USING btree (contact_id);
CREATE INDEX index_conversations_on_contact_inbox_id ON public.conversations USING btree (contact_inbox_id);
CREATE INDEX index_conversations_on_inbox_id ON public.conversations USING btree (inbox_id);
CREATE INDEX index_conversations_on_status_and_account_id ON public.conversations USING btree (status, account_id);
CREATE UNIQUE INDEX index_conversations_on_uuid ON public.conversations USING btree (uuid);
CREATE INDEX index_messages_on_account_id ON public.messages USING btree (account_id);
CREATE INDEX index_messages_on_conversation_id ON public.messages USING btree (conversation_id);
CREATE INDEX index_messages_on_inbox_id ON public.messages USING btree (inbox_id);
CREATE INDEX index_messages_on_sender_type_and_sender_id ON public.messages USING btree (sender_type, sender_id);
CREATE INDEX index_messages_on_source_id ON public.messages USING btree (source_id);
CREATE INDEX index_attachments_on_account_id ON public.attachments USING btree (account_id);
CREATE INDEX index_attachments_on_message_id ON public.attachments USING btree (message_id);
CREATE UNIQUE INDEX index_active_storage_blobs_on_key ON public.active_storage_blobs USING btree (key);
CREATE INDEX index_active_storage_attachments_on_blob_id ON public.active_storage_attachments USING btree (blob_id);
CREATE UNIQUE INDEX index_active_storage_attachments_uniqueness ON public.active_storage_attachments USING btree (record_type, record_id, name, blob_id);
CREATE UNIQUE INDEX taggings_idx ON public.taggings USING btree (tag_id, taggable_id, taggable_type, context, tagger_id, tagger_type);
CREATE INDEX index_taggings_on_context ON public.taggings USING btree (context);
CREATE INDEX index_taggings_on_tag_id ON public.taggings USING btree (tag_id);
CREATE INDEX index_taggings_on_taggable_id_and_taggable_type_and_context ON public.taggings USING btree (taggable_id, taggable_type, context);
CREATE UNIQUE INDEX index_tags_on_name ON public.tags USING btree (name);

ALTER TABLE ONLY public.account_users ADD CONSTRAINT fk_rails_685e030c15 FOREIGN KEY (account_id) REFERENCES public.accounts(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.account_users ADD CONSTRAINT fk_rails_e636d9d9a5 FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.contact_inboxes ADD CONSTRAINT fk_rails_3e6a4a1d1e FOREIGN KEY (contact_id) REFERENCES public.contacts(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.contact_inboxes ADD CONSTRAINT fk_rails_e2ea1ac7a8 FOREIGN KEY (inbox_id) REFERENCES public.inboxes(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.conversations ADD CONSTRAINT fk_rails_5f6a7b2c6e FOREIGN KEY (contact_inbox_id) REFERENCES public.contact_inboxes(id);
ALTER TABLE ONLY public.notes ADD CONSTRAINT fk_rails_1c2f2e4c1c FOREIGN KEY (account_id) REFERENCES public.accounts(id);
ALTER TABLE ONLY public.notes ADD CONSTRAINT fk_rails_2d7c8c3b5c FOREIGN KEY (contact_id) REFERENCES public.contacts(id);
ALTER TABLE ONLY public.notes ADD CONSTRAINT fk_rails_7f2323ad43 FOREIGN KEY (user_id) REFERENCES public.users(id);
ALTER TABLE ONLY public.active_storage_attachments ADD CONSTRAINT fk_rails_c3b3935057 FOREIGN KEY (blob_id) REFERENCES public.active_storage_blobs(id);
-- integrity: not declared upstream
ALTER TABLE ONLY public.inboxes ADD CONSTRAINT fk_seed_inboxes_account FOREIGN KEY (account_id) REFERENCES public.accounts(id);
ALTER TABLE ONLY public.inbox_members ADD CONSTRAINT fk_seed_inbox_members_inbox FOREIGN KEY (inbox_id) REFERENCES public.inboxes(id);
ALTER TABLE ONLY public.inbox_members ADD CONSTRAINT fk_seed_inbox_members_user FOREIGN KEY (user_id) REFERENCES public.users(id);
ALTER TABLE ONLY public.contacts ADD CONSTRAINT fk_seed_contacts_account FOREIGN KEY (account_id) REFERENCES public.accounts(id);
ALTER TABLE ONLY public.conversations ADD CONSTRAINT fk_seed_conversations_contact FOREIGN KEY (contact_id) REFERENCES public.contacts(id);
ALTER TABLE ONLY public.conversations ADD CONSTRAINT fk_seed_conversations_inbox FOREIGN KEY (inbox_id) REFERENCES public.inboxes(id);
ALTER TABLE ONLY public.conversations ADD CONSTRAINT fk_seed_conversations_assignee FOREIGN KEY (assignee_id) REFERENCES public.users(id);
ALTER TABLE ONLY public.messages ADD CONSTRAINT fk_seed_messages_conversation FOREIGN KEY (conversation_id) REFERENCES public.conversations(id);
ALTER TABLE ONLY public.attachments ADD CONSTRAINT fk_seed_attachments_message FOREIGN KEY (message_id) REFERENCES public.messages(id);
ALTER TABLE ONLY public.taggings ADD CONSTRAINT fk_seed_taggings_tag FOREIGN KEY (tag_id) REFERENCES public.tags(id);

CREATE TRIGGER accounts_after_insert_row_tr AFTER INSERT ON public.accounts FOR EACH ROW EXECUTE PROCEDURE public.accounts_after_insert_row_tr();
CREATE TRIGGER conversations_before_insert_row_tr BEFORE INSERT ON public.conversations FOR EACH ROW EXECUTE PROCEDURE public.conversations_before_insert_row_tr();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_version_is_the_newest_migration() {
        let max = SCHEMA_MIGRATIONS.iter().max().unwrap();
        assert_eq!(*max, SCHEMA_VERSION);
        let mut sorted = SCHEMA_MIGRATIONS.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), SCHEMA_MIGRATIONS.len(), "duplicate versions");
        assert!(SCHEMA_MIGRATIONS
            .iter()
            .all(|v| v.len() == 14 && v.bytes().all(|b| b.is_ascii_digit())));
    }

    #[test]
    fn every_table_is_created_and_every_sequence_belongs_to_a_table() {
        for t in TABLES {
            assert!(
                PRE_DATA.contains(&format!("CREATE TABLE public.{t} (")),
                "{t} is not created"
            );
        }
        for (t, seq) in ID_SEQUENCES {
            assert!(TABLES.contains(t));
            assert_eq!(*seq, format!("{t}_id_seq"));
        }
    }
}
