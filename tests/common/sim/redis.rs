//! The release's Redis, reached with `redis-cli` at the master pod's address.

use std::process::{Command, Output};

use super::{text, Sim, RELEASE};

impl Sim {
    /// Runs `redis-cli` against the Redis master pod's address; the password goes through
    /// the environment, never argv.
    pub fn redis_cli(&self, command: &[&str], password: &str) -> Output {
        let ip = self.kubectl(&[
            "get",
            "pod",
            &format!("{RELEASE}-redis-master-0"),
            "-o",
            "jsonpath={.status.podIP}",
        ]);
        Command::new("redis-cli")
            .args(["-h", ip.trim(), "--no-auth-warning"])
            .args(command)
            .env("REDISCLI_AUTH", password)
            .output()
            .expect("redis-cli is missing: run scripts/install-test-deps.sh")
    }

    /// `redis-cli EXISTS key` against the Redis master pod's address.
    pub fn redis_exists(&self, key: &str, password: &str) -> bool {
        let out = self.redis_cli(&["EXISTS", key], password);
        let answer = text(&out.stdout);
        assert!(
            out.status.success() && !answer.contains("ERR") && !answer.contains("NOAUTH"),
            "redis-cli EXISTS failed: {answer}{}",
            text(&out.stderr)
        );
        answer.trim() == "1"
    }

    pub fn redis_cli_del(&self, key: &str, password: &str) {
        let out = self.redis_cli(&["DEL", key], password);
        assert_eq!(text(&out.stdout).trim(), "1", "{}", text(&out.stderr));
    }

    pub fn redis_set(&self, key: &str, password: &str) {
        let out = self.redis_cli(&["SET", key, "true"], password);
        assert_eq!(text(&out.stdout).trim(), "OK", "{}", text(&out.stderr));
    }
}
