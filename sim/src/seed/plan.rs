//! How many rows of each kind a target size needs, and which id ranges belong to which
//! account. Pure and small (a few numbers per account), so every pass over the data can
//! consult it without holding any rows.

use std::ops::Range;

/// Average bytes of `COPY` text one conversation brings with its messages, contact and the
/// rest (measured on the generator's own output; see the size test in `generate.rs`).
pub const BYTES_PER_CONVERSATION: u64 = 8_700;

/// Label titles; tags (acts-as-taggable) are shared across accounts by name.
pub const LABEL_TITLES: &[&str] = &[
    "billing",
    "bug",
    "feature-request",
    "vip",
    "urgent",
    "refund",
    "shipping",
    "onboarding",
];
pub const LABELS_PER_ACCOUNT: u64 = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPlan {
    pub id: u64,
    pub users: Range<u64>,
    pub inboxes: Range<u64>,
    pub contacts: Range<u64>,
    pub conversations: Range<u64>,
    pub labels: Range<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub seed: u64,
    pub accounts: Vec<AccountPlan>,
    pub users: u64,
    pub inboxes: u64,
    pub contacts: u64,
    pub conversations: u64,
}

impl Plan {
    /// The plan for about `size_bytes` of row data. Ids are 1-based and contiguous per table.
    pub fn for_size(size_bytes: u64, seed: u64) -> Self {
        let conversations = size_bytes / BYTES_PER_CONVERSATION;
        if conversations == 0 {
            return Self {
                seed,
                accounts: Vec::new(),
                users: 0,
                inboxes: 0,
                contacts: 0,
                conversations: 0,
            };
        }
        let n_accounts = (2 + conversations / 50_000).min(6);
        let users = (12 + conversations / 1_500).clamp(2 * n_accounts, 120);
        let inboxes = (2 * n_accounts + conversations / 20_000).min(40);
        let contacts = (conversations * 4 / 5).max(n_accounts);
        // Account 1 is the biggest tenant, the others shrink: shares n, n-1, ..., 1.
        let weights: Vec<u64> = (0..n_accounts).map(|k| n_accounts - k).collect();
        let users_r = split(users, &weights);
        let inboxes_r = split(inboxes, &weights);
        let contacts_r = split(contacts, &weights);
        let convs_r = split(conversations, &weights);
        let accounts = (0..n_accounts as usize)
            .map(|k| AccountPlan {
                id: k as u64 + 1,
                users: users_r[k].clone(),
                inboxes: inboxes_r[k].clone(),
                contacts: contacts_r[k].clone(),
                conversations: convs_r[k].clone(),
                labels: (k as u64 * LABELS_PER_ACCOUNT + 1)
                    ..((k as u64 + 1) * LABELS_PER_ACCOUNT + 1),
            })
            .collect();
        Self {
            seed,
            accounts,
            users,
            inboxes,
            contacts,
            conversations,
        }
    }

    pub fn labels(&self) -> u64 {
        self.accounts.len() as u64 * LABELS_PER_ACCOUNT
    }

    fn find(&self, id: u64, range: impl Fn(&AccountPlan) -> &Range<u64>) -> &AccountPlan {
        let i = self.accounts.partition_point(|a| range(a).end <= id);
        &self.accounts[i]
    }

    pub fn account_of_user(&self, user: u64) -> &AccountPlan {
        self.find(user, |a| &a.users)
    }

    pub fn account_of_inbox(&self, inbox: u64) -> &AccountPlan {
        self.find(inbox, |a| &a.inboxes)
    }

    pub fn account_of_contact(&self, contact: u64) -> &AccountPlan {
        self.find(contact, |a| &a.contacts)
    }

    pub fn account_of_conversation(&self, conversation: u64) -> &AccountPlan {
        self.find(conversation, |a| &a.conversations)
    }
}

/// Splits `1..=total` into contiguous ranges proportional to `weights`, each non-empty.
fn split(total: u64, weights: &[u64]) -> Vec<Range<u64>> {
    let n = weights.len() as u64;
    let sum: u64 = weights.iter().sum();
    let spare = total - n; // everyone gets one, the rest by weight
    let mut start = 1;
    let mut handed = 0;
    let mut cum = 0;
    weights
        .iter()
        .map(|w| {
            cum += w;
            let upto = spare * cum / sum;
            let len = 1 + upto - handed;
            handed = upto;
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_id_once_and_favour_the_first_account() {
        let r = split(100, &[3, 2, 1]);
        assert_eq!(r.first().unwrap().start, 1);
        assert_eq!(r.last().unwrap().end, 101);
        assert!(r.windows(2).all(|w| w[0].end == w[1].start));
        assert!(r[0].end - r[0].start > r[2].end - r[2].start);
        assert_eq!(split(3, &[3, 2, 1]), vec![1..2, 2..3, 3..4]);
    }

    #[test]
    fn ratios_look_like_a_live_agent_installation() {
        let p = Plan::for_size(2_000_000_000, 1);
        assert!((2..=6).contains(&p.accounts.len()));
        assert!((10..=120).contains(&p.users), "users {}", p.users);
        assert!(p.contacts > 100_000 && p.contacts < p.conversations);
        let small = Plan::for_size(20_000_000, 1);
        assert_eq!(small.accounts.len(), 2);
        assert!(small.conversations > 1_000);
    }

    #[test]
    fn every_id_maps_back_to_its_account() {
        let p = Plan::for_size(50_000_000, 3);
        for a in &p.accounts {
            for c in [a.conversations.start, a.conversations.end - 1] {
                assert_eq!(p.account_of_conversation(c).id, a.id);
            }
            assert_eq!(p.account_of_contact(a.contacts.start).id, a.id);
            assert_eq!(p.account_of_user(a.users.end - 1).id, a.id);
            assert_eq!(p.account_of_inbox(a.inboxes.start).id, a.id);
        }
    }

    #[test]
    fn a_tiny_size_plans_an_empty_database() {
        let p = Plan::for_size(100, 1);
        assert!(p.accounts.is_empty());
        assert_eq!(p.conversations, 0);
    }
}
