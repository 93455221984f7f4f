//! The admin page in a real browser: headless Chromium driven over WebDriver
//! (chromedriver) against the real gateway binary. What the page creates
//! must work for real: the test then signs in through `/oauth/token` with
//! the user and client the browser made, and calls the upstream.
//!
//! The page also runs over HTTP/2 on the HTTPS listener, where a browser
//! sends `:authority` and no `Host`.
//!
//! Chromium and chromedriver are Debian packages (`chromium`,
//! `chromium-driver`); `scripts/test` installs them. A missing one fails
//! the test, never skips it.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::harness::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any one thing may take to appear in the page.
const WAIT: Duration = Duration::from_secs(10);
const ADMIN: (&str, &str) = ("admin", "admin-password-1");

/// chromedriver, its browser and a throwaway profile. Dropping it (also
/// when a test fails) kills chromedriver's whole process group, browser
/// included.
struct Browser {
    client: Client,
    driver: Child,
    _dir: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: run scripts/test, which installs the Debian packages \
                 chromium and chromium-driver (apt-get install chromium chromium-driver)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).unwrap();
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own group, so one signal reaches the browser too.
            .process_group(0);
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut driver = command.spawn().expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before listening:\n{}",
                    std::fs::read_to_string(dir.path().join("chromedriver.log"))
                        .unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }

        let profile = dir.path().join("profile");
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--disable-quic",
                    // The gateway's certificate is self-signed.
                    "--ignore-certificate-errors",
                    format!("--user-data-dir={}", profile.display()),
                    "--window-size=1280,900",
                ]
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = Client::with_capabilities_and_connector(
            &format!("http://127.0.0.1:{port}"),
            &capabilities,
            HttpConnector::new(),
        )
        .await
        .unwrap_or_else(|error| {
            panic!(
                "chromedriver could not start Chromium: {error}\n{}",
                std::fs::read_to_string(dir.path().join("chromedriver.log")).unwrap_or_default()
            )
        });
        Browser {
            client,
            driver,
            _dir: dir,
        }
    }

    /// Ends the session (closing the browser), then chromedriver.
    async fn quit(self) {
        let _ = self.client.clone().close().await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.visible(css).await;
        element.clear().await.unwrap();
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    async fn click(&self, css: &str) {
        self.visible(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// The element once it exists and is displayed.
    async fn visible(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if element.is_displayed().await.unwrap_or(false) {
                    return element;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "{css} did not appear within {WAIT:?}; {}",
                    self.diagnosis().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` is no longer displayed (or gone).
    async fn hidden(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Err(_) => return,
                Ok(element) if !element.is_displayed().await.unwrap_or(true) => return,
                Ok(_) => {}
            }
            if Instant::now() > deadline {
                panic!(
                    "{css} was still displayed after {WAIT:?}; {}",
                    self.diagnosis().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        self.visible(css).await.text().await.unwrap()
    }

    async fn attribute(&self, css: &str, name: &str) -> String {
        self.visible(css)
            .await
            .attr(name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{css} has no attribute {name}"))
    }

    /// Waits until `#message` says `expected` (a substring).
    async fn message(&self, expected: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.message_text().await.contains(expected) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "#message did not say {expected:?} within {WAIT:?}; {}",
                    self.diagnosis().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn message_text(&self) -> String {
        let text = self
            .client
            .execute(
                "return document.getElementById('message').textContent",
                vec![],
            )
            .await
            .unwrap();
        text.as_str().unwrap_or_default().to_string()
    }

    /// The page source, checked for what must never be there.
    async fn source(&self) -> String {
        let source = self.client.source().await.unwrap();
        assert!(
            !source.contains("$2b$") && !source.contains("$2a$"),
            "the page shows a password hash"
        );
        assert!(
            !source.contains("sha256$"),
            "the page shows a client secret hash"
        );
        source
    }

    /// What the page shows, for a failure message.
    async fn diagnosis(&self) -> String {
        format!("#message says {:?}", self.message_text().await)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_page_creates_signs_in_for_real() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).admin(ADMIN.0, ADMIN.1));
    // A few users already there (through the CLI), so the list has rows.
    for (username, password) in [
        ("jonas", "pass-jonas-1"),
        ("maria", "pass-maria-1"),
        ("li.wei", "pass-liwei-1"),
    ] {
        gateway.create_user(username, password);
    }
    let browser = Browser::start().await;
    browser
        .client
        .goto(&gateway.url("/oauth/management"))
        .await
        .unwrap();

    // A wrong password is refused, with the reason shown.
    browser.type_into("#login-username", ADMIN.0).await;
    browser
        .type_into("#login-password", "not-the-password")
        .await;
    browser.click("#login-submit").await;
    browser
        .message("wrong administrator username or password")
        .await;
    assert!(!browser
        .client
        .find(Locator::Css("#app"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());

    browser.type_into("#login-password", ADMIN.1).await;
    browser.click("#login-submit").await;
    browser.visible("#app").await;
    browser.hidden("#login").await;
    browser
        .visible("#users-table tr[data-username='maria']")
        .await;

    // A user, with the password typed twice.
    browser.type_into("#new-user-username", "alice").await;
    browser
        .type_into("#new-user-password", "correct horse 1")
        .await;
    browser
        .type_into("#new-user-password2", "correct horse 1")
        .await;
    browser.click("#new-user-submit").await;
    browser.message("created user alice").await;
    let user_id = browser
        .attribute("#users-table tr[data-username='alice']", "data-user-id")
        .await;
    assert!(!user_id.is_empty());
    browser.source().await;

    // A public client.
    browser.click("#tab-clients").await;
    browser.type_into("#new-client-name", "browser app").await;
    browser.click("#new-client-submit").await;
    browser.message("created client browser app").await;
    let client_id = browser
        .attribute(
            "#clients-table tr[data-client-name='browser app']",
            "data-client-id",
        )
        .await;
    assert!(!client_id.is_empty());
    browser.hidden("#client-secret").await;

    // A confidential client: its secret is shown once.
    browser
        .type_into("#new-client-name", "billing service")
        .await;
    browser
        .visible("#new-client-type")
        .await
        .select_by_value("confidential")
        .await
        .unwrap();
    browser.click("#new-client-grant-client_credentials").await;
    browser.click("#new-client-submit").await;
    browser.visible("#client-secret").await;
    let secret = browser.text("#client-secret-value").await;
    let shown_client_id = browser.text("#client-secret-client-id").await;
    assert!(secret.len() >= 20, "a real secret is shown: {secret:?}");
    assert!(browser
        .text("#client-secret")
        .await
        .contains("will not be shown again"));
    let confidential_id = browser
        .attribute(
            "#clients-table tr[data-client-name='billing service']",
            "data-client-id",
        )
        .await;
    assert_eq!(shown_client_id, confidential_id);
    browser.click("#client-secret-dismiss").await;
    browser.hidden("#client-secret").await;
    let source = browser.source().await;
    assert!(
        !source.contains(&secret),
        "the secret is gone from the page once dismissed"
    );

    // The secret works: client_credentials with HTTP Basic.
    let response = gateway
        .post_form(
            "/oauth/token",
            Some((&confidential_id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(
        response.status(),
        200,
        "client_credentials with the shown secret"
    );

    // The user and the public client the browser made sign in for real.
    let response = gateway
        .token_request(&[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("username", "alice"),
            ("password", "correct horse 1"),
        ])
        .await;
    assert_eq!(
        response.status(),
        200,
        "password grant with the browser's user and client"
    );
    let body = json(response).await;
    assert_eq!(
        body["token_type"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("bearer")
    );
    let access_token = body["access_token"].as_str().expect("an access token");
    assert_eq!(gateway.get_status("/x", access_token).await, 200);
    assert_eq!(
        upstream.last().header_values("x-user-id"),
        vec![user_id.as_str()],
        "the upstream sees the id the page listed"
    );

    // That sign-in is a session the page lists and can revoke.
    browser.click("#tab-users").await;
    browser
        .click("#users-table tr[data-username='alice'] button[data-opens='sessions']")
        .await;
    let revoke = "#users-table tr.detail-row tr[data-session-id] button";
    assert_eq!(browser.text(revoke).await, "Revoke");
    browser.click(revoke).await;
    browser.message("revoked a session of alice").await;
    browser.visible("#users-table tr.detail-row").await;
    assert_eq!(
        gateway.get_status("/x", access_token).await,
        401,
        "a revoked session's token is dead"
    );

    // Disabling from the page stops the password grant.
    browser
        .click("#users-table tr[data-username='li.wei'] button[aria-label='Disable li.wei']")
        .await;
    browser.message("disabled user li.wei").await;
    browser
        .visible("#users-table tr[data-username='li.wei'] .badge.disabled")
        .await;
    let response = gateway
        .token_request(&[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("username", "li.wei"),
            ("password", "pass-liwei-1"),
        ])
        .await;
    assert_eq!(response.status(), 400, "a disabled user cannot sign in");

    if let Ok(path) = std::env::var("PORTCULLIS_SCREENSHOT") {
        browser.click("#message-dismiss").await;
        browser
            .visible("#users-table tr[data-username='alice']")
            .await;
        browser
            .client
            .execute(
                "document.activeElement.blur(); window.scrollTo(0, 0)",
                vec![],
            )
            .await
            .unwrap();
        let png = browser.client.screenshot().await.unwrap();
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("writing the screenshot to {path}: {e}"));
    }
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_writes_over_http2_on_the_https_listener() {
    let upstream = Upstream::start().await;
    // TLS only: the page is not served over plain HTTP at all.
    let gateway = Gateway::start(
        &GatewayConfig::new(&upstream)
            .admin(ADMIN.0, ADMIN.1)
            .oauth("  allow_plaintext: false\n"),
    );
    let client_id = gateway.create_client("ios app");
    let browser = Browser::start().await;
    let page = format!("https://127.0.0.1:{}/oauth/management/", gateway.https_port);
    browser.client.goto(&page).await.unwrap();
    let protocol = browser
        .client
        .execute(
            "return performance.getEntriesByType('navigation')[0].nextHopProtocol",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(protocol, "h2", "the page loaded over HTTP/2");

    browser.type_into("#login-username", ADMIN.0).await;
    browser.type_into("#login-password", ADMIN.1).await;
    browser.click("#login-submit").await;
    browser.visible("#app").await;
    // A write: same-origin and CSRF checks pass on `:authority`.
    browser.type_into("#new-user-username", "alice").await;
    browser
        .type_into("#new-user-password", "correct horse 1")
        .await;
    browser
        .type_into("#new-user-password2", "correct horse 1")
        .await;
    browser.click("#new-user-submit").await;
    browser.message("created user alice").await;
    browser
        .visible("#users-table tr[data-username='alice']")
        .await;
    let api_protocols = browser
        .client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.nextHopProtocol)",
            vec![],
        )
        .await
        .unwrap();
    let api_protocols = api_protocols.as_array().unwrap();
    assert!(
        !api_protocols.is_empty() && api_protocols.iter().all(|p| p == "h2"),
        "every API call went over HTTP/2: {api_protocols:?}"
    );

    // The user the page made signs in for real.
    let response = client()
        .post(gateway.https_url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", client_id.as_str()),
            ("username", "alice"),
            ("password", "correct horse 1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the user the page created signs in");
    browser.quit().await;
}
