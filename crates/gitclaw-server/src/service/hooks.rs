//! Webhooks: managing a repository's webhooks, and delivering what the outbox
//! holds (see the metadata crate's `hooks`).
//!
//! For: telling a CI system or any other listener that a push moved refs,
//! without it polling. A push's deliveries are written in the push's own
//! transaction; every instance runs a deliverer that claims due deliveries
//! (woken at once by a push it committed, else every few seconds for those
//! of other instances), POSTs each, and records the outcome. A failure is
//! retried with growing waits, and given up after [`MAX_ATTEMPTS`].
//!
//! Each request carries `X-GitClaw-Event`, `X-GitClaw-Delivery` (the
//! delivery's id: the same on a retry, so a receiver can drop repeats) and,
//! when the webhook has a secret, `X-GitClaw-Signature-256: sha256=<hex>`,
//! the HMAC-SHA256 of the body under the secret. Redirects are not followed
//! and the answer's body is not read: only its status counts.

use std::time::Duration;

use gitclaw_metadata::{
    Delivery, DeliveryOutcome, DueDelivery, Error as MetadataError, NewWebhook, Repo, Webhook,
};
use hmac::{Hmac, Mac};
use tokio::sync::Notify;

use crate::app::AppState;
use crate::auth::now_secs;

/// Attempts at one delivery before it is given up.
pub const MAX_ATTEMPTS: u64 = 8;
/// How long one attempt may take, connecting included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery is this instance's: well past an attempt's
/// timeout, so only a deliverer that died loses it to another.
const LEASE_SECS: i64 = 60;
/// Deliveries claimed, and sent at once, per round.
const BATCH: u32 = 16;
/// How often the deliverer looks for due deliveries it was not woken for
/// (retries, and pushes committed by other instances).
const POLL: Duration = Duration::from_secs(2);
/// How long delivered and failed deliveries are kept, to be looked at.
const KEEP_SECS: i64 = 7 * 24 * 3600;
/// How often those older are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Webhooks one repository may have.
pub const MAX_PER_REPO: usize = 20;
/// The longest URL and secret taken.
const MAX_URL_BYTES: usize = 2048;
const MAX_SECRET_BYTES: usize = 256;

/// What wakes this instance's deliverer.
#[derive(Default)]
pub struct Deliveries {
    wake: Notify,
}

impl Deliveries {
    /// A push committed here: its deliveries (if any) go out now rather than
    /// at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Why a webhook request is refused.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The request is wrong; the text says how.
    #[error("{0}")]
    Invalid(String),
    #[error("webhook {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Metadata(MetadataError),
}

impl From<MetadataError> for HookError {
    fn from(err: MetadataError) -> Self {
        match err {
            MetadataError::InvalidInput(m) => HookError::Invalid(m),
            other => HookError::Metadata(other),
        }
    }
}

/// Whether `ip` is a public address: not loopback, private, shared (CGNAT),
/// link-local, unique-local, unspecified, multicast or broadcast (an
/// IPv4-mapped IPv6 address is judged by its IPv4 one).
fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

/// The address a URL's host names, when it is an address.
fn literal_ip(url: &reqwest::Url) -> Option<std::net::IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

const NOT_PUBLIC: &str =
    "is not a public address, and webhooks may not target those here (GITCLAW_WEBHOOK_PRIVATE_TARGETS=false)";

/// Resolves host names to their public addresses only: with
/// `GITCLAW_WEBHOOK_PRIVATE_TARGETS=false`, a name that resolves to nothing
/// else fails the attempt. Checked where the connection is made, so a name
/// cannot resolve to a public address when checked and a private one when used.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<std::net::SocketAddr> = all.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(
                    format!("{host} resolves to no public address: it {NOT_PUBLIC}").into(),
                );
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Check a webhook's URL: absolute `http` or `https` with a host, and, unless
/// `private` targets are allowed, not an address that is not public.
fn check_url(url: &str, private: bool) -> Result<(), HookError> {
    if url.len() > MAX_URL_BYTES {
        return Err(HookError::Invalid(format!(
            "a webhook URL may be at most {MAX_URL_BYTES} bytes"
        )));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|err| HookError::Invalid(format!("'{url}' is not a URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(HookError::Invalid(format!(
            "a webhook URL is http:// or https:// with a host, not '{url}'"
        )));
    }
    match literal_ip(&parsed) {
        Some(ip) if !private && !is_public(ip) => {
            Err(HookError::Invalid(format!("{ip} {NOT_PUBLIC}")))
        }
        _ => Ok(()),
    }
}

/// Create a webhook of `repo`; its `ping` goes out at once.
pub async fn create(
    state: &AppState,
    repo: &Repo,
    url: &str,
    secret: &str,
    events: &[String],
    actor: &str,
) -> Result<Webhook, HookError> {
    check_url(url, state.config.webhook_private_targets)?;
    if secret.len() > MAX_SECRET_BYTES {
        return Err(HookError::Invalid(format!(
            "a webhook secret may be at most {MAX_SECRET_BYTES} bytes"
        )));
    }
    let ping = serde_json::json!({
        "event": gitclaw_metadata::PING_EVENT,
        "repository": { "id": repo.id, "owner": repo.owner, "name": repo.name },
        "events": events,
    });
    let hook = state
        .meta
        .create_webhook(
            NewWebhook {
                repo_id: &repo.id,
                url,
                secret,
                events,
                actor,
                max_per_repo: MAX_PER_REPO,
            },
            &ping,
        )
        .await?;
    state.hooks.wake();
    Ok(hook)
}

/// Delete a webhook of `repo` and what is owed to it.
pub async fn delete(state: &AppState, repo: &Repo, id: &str, actor: &str) -> Result<(), HookError> {
    match state.meta.delete_webhook(&repo.id, id, actor).await? {
        true => Ok(()),
        false => Err(HookError::NotFound(id.to_owned())),
    }
}

/// The newest `limit` deliveries of a webhook of `repo`.
pub async fn deliveries(
    state: &AppState,
    repo: &Repo,
    id: &str,
    limit: u32,
) -> Result<Vec<Delivery>, HookError> {
    state
        .meta
        .list_deliveries(&repo.id, id, limit)
        .await?
        .ok_or_else(|| HookError::NotFound(id.to_owned()))
}

/// Queue delivery `delivery` of webhook `id` of `repo` again (see the
/// metadata's `redeliver`); it goes out at once.
pub async fn redeliver(
    state: &AppState,
    repo: &Repo,
    id: &str,
    delivery: &str,
) -> Result<Delivery, HookError> {
    let missing = || HookError::NotFound(format!("{id}, delivery {delivery}"));
    let number: i64 = delivery.parse().map_err(|_| missing())?;
    let again = state
        .meta
        .redeliver(&repo.id, id, number)
        .await?
        .ok_or_else(missing)?;
    state.hooks.wake();
    Ok(again)
}

/// When attempt `attempts + 1` is due after attempt `attempts` failed at
/// `now`: 2 s, 8 s, 32 s, … (×4 each time), at most an hour apart.
fn retry_at(now: i64, attempts: u64) -> i64 {
    let wait = 2i64.saturating_mul(4i64.saturating_pow(attempts.saturating_sub(1) as u32));
    now.saturating_add(wait.min(3600))
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Send one delivery; how it ended. Unless `private` targets are allowed,
/// an address that is not public is refused (the setting may have changed
/// since the webhook was made; names are checked by [`PublicOnly`]).
async fn attempt(client: &reqwest::Client, due: &DueDelivery, private: bool) -> DeliveryOutcome {
    let literal = reqwest::Url::parse(&due.url)
        .ok()
        .as_ref()
        .and_then(literal_ip);
    if let Some(ip) = literal.filter(|ip| !private && !is_public(*ip)) {
        return DeliveryOutcome::Failed {
            status: None,
            error: format!("{ip} {NOT_PUBLIC}"),
        };
    }
    let mut request = client
        .post(&due.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-GitClaw-Event", &due.event)
        .header("X-GitClaw-Delivery", due.id.to_string())
        .header("X-GitClaw-Hook-Id", &due.hook_id);
    if !due.secret.is_empty() {
        request = request.header(
            "X-GitClaw-Signature-256",
            signature(&due.secret, due.payload.as_bytes()),
        );
    }
    let (status, error) = match request.body(due.payload.clone()).send().await {
        Ok(answer) if answer.status().is_success() => {
            return DeliveryOutcome::Delivered {
                status: answer.status().as_u16(),
            }
        }
        Ok(answer) => (
            Some(answer.status().as_u16()),
            format!("the receiver answered {}", answer.status()),
        ),
        Err(err) => (None, crate::error::chain(&err)),
    };
    if due.attempts >= MAX_ATTEMPTS {
        DeliveryOutcome::Failed { status, error }
    } else {
        DeliveryOutcome::Retry {
            status,
            error,
            at: retry_at(now_secs(), due.attempts),
        }
    }
}

/// Claim and send due deliveries until none is left.
async fn deliver_due(state: &AppState, client: &reqwest::Client) -> Result<(), MetadataError> {
    loop {
        let now = now_secs();
        let due = state
            .meta
            .claim_deliveries(now, now + LEASE_SECS, BATCH)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let attempts = due.iter().map(|due| async move {
            let outcome = attempt(client, due, state.config.webhook_private_targets).await;
            let label = match &outcome {
                DeliveryOutcome::Delivered { .. } => "delivered",
                DeliveryOutcome::Retry { .. } => "retry",
                DeliveryOutcome::Failed { .. } => "failed",
            };
            state
                .metrics
                .webhook_deliveries
                .with_label_values(&[label])
                .inc();
            if let DeliveryOutcome::Retry { error, .. } | DeliveryOutcome::Failed { error, .. } =
                &outcome
            {
                tracing::info!(
                    delivery = due.id,
                    hook = %due.hook_id,
                    attempts = due.attempts,
                    outcome = label,
                    error = %error,
                    "webhook delivery failed"
                );
            }
            state
                .meta
                .finish_delivery(due.id, &outcome, now_secs())
                .await
        });
        for finished in futures_util::future::join_all(attempts).await {
            finished?;
        }
    }
}

/// The client deliveries go out with: to public addresses only, resolved
/// here and reached directly (no proxy, which would resolve them itself),
/// unless `private` targets are allowed; then through the proxy the
/// environment names (`HTTPS_PROXY`, …), if any.
fn client(private: bool) -> Result<reqwest::Client, reqwest::Error> {
    // One process-wide TLS provider: ring, as the S3 client uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(ATTEMPT_TIMEOUT / 2)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("GitClaw-Hookshot/", env!("CARGO_PKG_VERSION")));
    match private {
        true => builder.build(),
        false => builder.no_proxy().dns_resolver(PublicOnly).build(),
    }
}

/// How long the deliverer waits before it looks again, after `failures`
/// failed rounds in a row: [`POLL`], doubled for each, at most a minute.
fn poll_after(failures: u32) -> Duration {
    POLL.saturating_mul(1 << failures.min(5))
        .min(Duration::from_secs(60))
}

/// Run this instance's deliverer until shutdown.
pub fn spawn_deliverer(state: &AppState) {
    let client = match client(state.config.webhook_private_targets) {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %crate::error::chain(&err), "webhooks will not be delivered by this instance: no HTTP client");
            return;
        }
    };
    let state = state.clone();
    let task = state.clone();
    task.spawn(async move {
        let mut pruned = tokio::time::Instant::now();
        // Rounds failed in a row (the database is down): the next look waits
        // longer each time, so an outage is not logged every poll.
        let mut failures = 0u32;
        loop {
            // Cut short at shutdown: what was claimed and not finished is
            // taken up again once its lease runs out.
            let delivered = tokio::select! {
                _ = state.shutdown.cancelled() => return,
                delivered = deliver_due(&state, &client) => delivered,
            };
            match delivered {
                Ok(()) => failures = 0,
                Err(err) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %crate::error::chain(&err), "webhook deliveries failed; will retry");
                }
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = tokio::time::Instant::now();
                if let Err(err) = state.meta.prune_deliveries(now_secs() - KEEP_SECS).await {
                    tracing::warn!(error = %crate::error::chain(&err), "pruning old webhook deliveries failed");
                }
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = state.hooks.wake.notified(), if failures == 0 => {}
                _ = tokio::time::sleep(poll_after(failures)) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_deliverer_looks_again_less_often() {
        let waits: Vec<u64> = [0, 1, 2, 4, 5, 99]
            .into_iter()
            .map(|n| poll_after(n).as_secs())
            .collect();
        assert_eq!(waits, vec![2, 4, 8, 32, 60, 60]);
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        let waits: Vec<i64> = (1..=MAX_ATTEMPTS)
            .map(|n| retry_at(1000, n) - 1000)
            .collect();
        assert_eq!(waits, vec![2, 8, 32, 128, 512, 2048, 3600, 3600]);
        assert_eq!(retry_at(i64::MAX - 1, 3), i64::MAX);
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        for good in ["http://ci.example/hook", "https://10.0.0.1:8443/x?y=1"] {
            assert!(check_url(good, true).is_ok(), "{good}");
        }
        let long = format!("http://h/{}", "a".repeat(MAX_URL_BYTES));
        for bad in [
            "ftp://h/",
            "file:///etc/passwd",
            "not a url",
            "http://",
            long.as_str(),
        ] {
            assert!(
                matches!(check_url(bad, true), Err(HookError::Invalid(_))),
                "{bad}"
            );
        }
    }

    /// A receiver that is not there: retried until the last attempt, which fails.
    #[tokio::test]
    async fn a_failed_attempt_is_retried_until_the_last() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        drop(listener);
        let client = client(true).unwrap();
        let due = |attempts| DueDelivery {
            id: 1,
            hook_id: "h".into(),
            url: url.clone(),
            secret: String::new(),
            event: "push".into(),
            payload: "{}".into(),
            attempts,
        };
        let before = now_secs();
        match attempt(&client, &due(1), true).await {
            DeliveryOutcome::Retry { status, at, .. } => {
                assert_eq!(status, None);
                assert!((before + 2..=now_secs() + 2).contains(&at), "{at}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            attempt(&client, &due(MAX_ATTEMPTS), true).await,
            DeliveryOutcome::Failed { status: None, .. }
        ));
    }

    #[test]
    fn only_public_addresses_pass_when_private_targets_are_refused() {
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert!(check_url(url, true).is_ok(), "{url}");
            assert!(
                matches!(check_url(url, false), Err(HookError::Invalid(m)) if m.contains("GITCLAW_WEBHOOK_PRIVATE_TARGETS")),
                "{url}"
            );
        }
        assert!(check_url("http://ci.example/hook", false).is_ok());
    }

    /// A host name that resolves only to loopback is refused where the
    /// connection is made; an address refused before any connection.
    #[tokio::test]
    async fn deliveries_to_private_targets_fail_when_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = client(false).unwrap();
        let due = |url: String| DueDelivery {
            id: 1,
            hook_id: "h".into(),
            url,
            secret: String::new(),
            event: "push".into(),
            payload: "{}".into(),
            attempts: 1,
        };
        match attempt(&client, &due(format!("http://localhost:{port}/")), false).await {
            DeliveryOutcome::Retry {
                status: None,
                error,
                ..
            } => {
                assert!(error.contains("resolves to no public address"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        match attempt(&client, &due(format!("http://127.0.0.1:{port}/")), false).await {
            DeliveryOutcome::Failed {
                status: None,
                error,
            } => {
                assert!(error.contains("not a public address"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        drop(listener);
    }

    #[test]
    fn signature_is_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
