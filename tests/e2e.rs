//! End to end: the local stack over real HTTP, with signed WhatsApp payloads.

use std::process::{Command, Stdio};
use std::time::Duration as StdDuration;

use chrono::{Duration, DurationRound, Utc};
use futures::future::join_all;
use pulse_local::stack::StoreKind;
use pulse_shared::signature::sign;
use pulse_tests::*;
use serde_json::{json, Value};

const DATA_ROUTES: [&str; 4] = [
    "/api/webhook/metrics",
    "/api/webhook/conversations",
    "/api/webhook/stats/realtime",
    "/api/webhook/events/recent",
];

#[tokio::test]
async fn every_corpus_payload_is_answered_without_a_server_error() {
    let stack = Stack::start().await;
    let corpus = corpus();
    assert!(
        corpus.len() >= 100,
        "the corpus has {} payloads",
        corpus.len()
    );
    let mut accepted = 0;
    let mut expected_ids = std::collections::BTreeSet::new();
    for (name, body) in &corpus {
        let (status, answer) = stack.deliver(body).await;
        let is_webhook =
            serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("entry").is_some());
        if is_webhook {
            assert_eq!(status, 200, "{name}: {answer}");
            accepted += 1;
            expected_ids.extend(events(body).into_iter().map(|r| r.event.id));
        } else {
            assert_eq!(status, 400, "{name} is not a webhook: {answer}");
            assert_eq!(answer["error"]["code"], "invalid_payload");
        }
    }
    assert!(accepted >= 100, "{accepted} accepted");
    // The whole corpus is visible, and no response shows a customer's number.
    let mut all = Vec::new();
    let mut next = String::new();
    loop {
        let page = stack
            .data(&format!(
                "/api/webhook/events/recent?limit=200&before={next}"
            ))
            .await;
        all.extend(page["events"].as_array().unwrap().clone());
        match page["next"].as_str() {
            Some(cursor) => next = cursor.to_owned(),
            None => break,
        }
    }
    // Payloads that reuse a message id (pywa's `wamid.xyzxyz`) are one event.
    let shown: std::collections::BTreeSet<String> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown.len(), all.len(), "no event twice");
    assert_eq!(
        shown, expected_ids,
        "every update of the corpus is stored once"
    );
    for route in [
        "/api/webhook/events/recent?limit=200",
        "/api/webhook/conversations?limit=200",
        "/api/webhook/metrics?days=90",
    ] {
        // `phone_number_id` is the business's Graph API id, not a customer's number
        // (some sanitised fixtures reuse the customer's digits for it).
        let mut body = stack.get(route).await.1;
        strip_key(&mut body, "phone_number_id");
        let text = body.to_string();
        for number in ["972987654321", "16315551181", "1111111111111"] {
            assert!(!text.contains(number), "{route} shows {number}");
        }
    }
    stack.stop().await;
}

fn strip_key(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|v| strip_key(v, key));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip_key(v, key)),
        _ => {}
    }
}

#[tokio::test]
async fn hostile_requests_are_refused_and_change_nothing() {
    let stack = Stack::start().await;
    let body = envelope(
        vec![text("wamid.h1", CUSTOMER, Utc::now(), "hello")],
        vec![],
    );
    let secret = stack.setting("WHATSAPP_APP_SECRET");
    let cases: Vec<(&str, Vec<u8>, Option<String>, u16)> = vec![
        ("no signature", body.clone(), None, 401),
        (
            "wrong secret",
            body.clone(),
            Some(sign(b"not-the-secret", &body)),
            401,
        ),
        (
            "signature of another body",
            body.clone(),
            Some(sign(secret.as_bytes(), b"{}")),
            401,
        ),
        (
            "malformed signature",
            body.clone(),
            Some("sha256=xyz".into()),
            401,
        ),
        (
            "sha1 signature",
            body.clone(),
            Some("sha1=0000".into()),
            401,
        ),
        (
            "signed garbage",
            b"{not json".to_vec(),
            Some(sign(secret.as_bytes(), b"{not json")),
            400,
        ),
        (
            "signed non-webhook",
            b"[1,2]".to_vec(),
            Some(sign(secret.as_bytes(), b"[1,2]")),
            400,
        ),
        (
            "signed array in the envelope's field order",
            br#"["whatsapp_business_account",[]]"#.to_vec(),
            Some(sign(
                secret.as_bytes(),
                br#"["whatsapp_business_account",[]]"#,
            )),
            400,
        ),
    ];
    for (name, payload, signature, expected) in cases {
        let (status, answer) = stack.post_webhook(payload, signature.as_deref()).await;
        assert_eq!(status, expected, "{name}: {answer}");
        assert_eq!(answer["success"], false, "{name}");
    }
    // Over the Lambda limit (6 MB) but under API Gateway's: the function says 413.
    let big = vec![b' '; 7 * 1024 * 1024];
    let signature = sign(secret.as_bytes(), &big);
    assert_eq!(stack.post_webhook(big, Some(&signature)).await.0, 413);
    // Over API Gateway's own limit (10 MB): refused before the function.
    assert_eq!(
        stack
            .post_webhook(vec![b' '; 11 * 1024 * 1024], None)
            .await
            .0,
        413
    );
    let recent = stack.data("/api/webhook/events/recent").await;
    assert_eq!(recent["events"], json!([]), "nothing was stored");
    assert_eq!(
        stack.data("/api/webhook/stats/realtime").await["last_hour"],
        0
    );
    stack.stop().await;
}

#[tokio::test]
async fn hostile_bodies_get_a_clear_error_and_store_nothing() {
    let stack = Stack::start().await;
    let secret = stack.setting("WHATSAPP_APP_SECRET");
    let signed = |body: &[u8]| sign(secret.as_bytes(), body);
    let body = envelope(
        vec![text("wamid.h2", CUSTOMER, Utc::now(), "hello")],
        vec![],
    );
    let mut tampered = body.clone();
    let at = tampered.iter().position(|&b| b == b'h').unwrap();
    tampered[at] = b'j';
    let wrong_upper = signed(b"another body")
        .to_uppercase()
        .replace("SHA256=", "sha256=");
    let invalid_utf8 = [
        &br#"{"object":"whatsapp_business_account","entry":[{"id":""#[..],
        &[0xff, 0xfe, 0xfd],
        &br#""}]}"#[..],
    ]
    .concat();
    let nested = |at: &str| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{at}}}]}}]}}"#
        )
        .replace("DEEP", &("[".repeat(20_000) + &"]".repeat(20_000)))
        .into_bytes()
    };
    // In the envelope, which is read strictly: refused (serde_json stops at 128 levels).
    let deep = format!(
        r#"{{"object":"whatsapp_business_account","entry":{}{}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    )
    .into_bytes();
    let wrong_types: Vec<Vec<u8>> = [
        r#"{"object":"whatsapp_business_account","entry":"not a list"}"#,
        r#"{"object":"whatsapp_business_account","entry":[{"id":1,"changes":{"field":"messages"}}]}"#,
        r#"{"object":42,"entry":[]}"#,
        r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":["messages"],"value":{}}]}]}"#,
    ]
    .iter()
    .map(|b| b.as_bytes().to_vec())
    .collect();
    let mut cases: Vec<(&str, Vec<u8>, String, u16)> = vec![
        ("signed, then tampered", tampered, signed(&body), 401),
        (
            "uppercase hex of a wrong MAC",
            body.clone(),
            wrong_upper,
            401,
        ),
        (
            "sha1= only",
            body.clone(),
            "sha1=da39a3ee5e6b4b0d3255bfef95601890afd80709".into(),
            401,
        ),
        (
            "invalid UTF-8",
            invalid_utf8.clone(),
            signed(&invalid_utf8),
            400,
        ),
        ("nested 20 000 deep", deep.clone(), signed(&deep), 400),
    ];
    for body in &wrong_types {
        cases.push(("wrong JSON types", body.clone(), signed(body), 400));
    }
    for (name, payload, signature, expected) in cases {
        let (status, answer) = stack.post_webhook(payload, Some(&signature)).await;
        assert_eq!(status, expected, "{name}: {answer}");
        assert_eq!(answer["success"], false, "{name}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name} says why: {answer}"
        );
    }
    assert_eq!(
        stack.data("/api/webhook/events/recent").await["events"],
        json!([]),
        "nothing was stored"
    );

    // Inside a change, Pulse reads leniently and keeps each update as it came
    // (Meta adds shapes without notice; a delivery must not fail for one): deep
    // nesting and wrong types there are recorded with what could be read, no crash.
    let lenient = [
        nested("DEEP"),
        nested(
            r#"{"messages":[{"from":"1","id":"wamid.deep","timestamp":"1","type":"text","text":{"body":DEEP}}]}"#,
        ),
        nested(
            r#"{"messages":[{"from":7,"id":"wamid.types","timestamp":{},"type":["text"],"text":"body"}]}"#,
        ),
    ];
    for body in lenient {
        let (status, answer) = stack.post_webhook(body.clone(), Some(&signed(&body))).await;
        assert_eq!(
            (status, &answer["data"]["stored"]),
            (200, &json!(1)),
            "{answer}"
        );
    }

    // The right MAC in uppercase hex is the same MAC: accepted.
    let upper = signed(&body).to_uppercase().replace("SHA256=", "sha256=");
    assert_eq!(stack.post_webhook(body.clone(), Some(&upper)).await.0, 200);

    // SQL and HTML in a message are data: stored and returned as they came.
    let nasty = [
        "'); DROP TABLE events; --",
        "<script>alert(1)</script>",
        "\u{0}\u{202e}",
    ];
    for (n, text_body) in nasty.iter().enumerate() {
        let id = format!("wamid.nasty{n}");
        let delivery = envelope(vec![text(&id, CUSTOMER, Utc::now(), text_body)], vec![]);
        assert_eq!(stack.deliver(&delivery).await.0, 200, "{text_body}");
    }
    let texts = stack
        .data("/api/webhook/events/recent?type=text_message")
        .await;
    let bodies: Vec<&str> = texts["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].as_str().unwrap())
        .collect();
    for text_body in nasty {
        assert!(bodies.contains(&text_body), "{text_body:?} in {bodies:?}");
    }
    // A huge string under the limit is stored whole.
    let huge = "x".repeat(2 * 1024 * 1024);
    let delivery = envelope(
        vec![text("wamid.huge", CUSTOMER, Utc::now(), &huge)],
        vec![],
    );
    assert_eq!(stack.deliver(&delivery).await.0, 200);
    let found = stack
        .data("/api/webhook/events/recent?type=text_message&limit=20")
        .await;
    let lengths: Vec<usize> = found["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].as_str().unwrap().len())
        .collect();
    assert!(
        lengths.contains(&huge.len()),
        "the 2 MiB text, whole: {lengths:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn tokens_go_in_the_header_and_a_burst_of_anonymous_websockets_is_refused() {
    let stack = Stack::start().await;
    let token = stack.setting("DASHBOARD_TOKEN");
    for path in [
        "/api/webhook/metrics",
        "/api/webhook/events/recent",
        "/api/webhook/conversations",
    ] {
        for query in [format!("token={token}"), format!("access_token={token}")] {
            let response = stack
                .http
                .get(stack.url(&format!("{path}?{query}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{path}?{query} is not a way in");
        }
    }
    let no_token = stack.stack.ws_url();
    let attempts = (0..200).map(|_| ws_connect(&no_token));
    let refused = join_all(attempts).await;
    assert!(
        refused
            .iter()
            .all(|attempt| attempt.as_ref().err().and_then(refusal_status) == Some(401)),
        "every connect without a token is refused with 401"
    );
    assert_eq!(stack.stack.websocket_clients(), 0);
    // And the server still serves the ones who have it.
    let mut client = ws_connect(&stack.ws_url(None))
        .await
        .expect("a dashboard connects");
    assert_eq!(
        ws_request(&mut client, r#"{"type":"ping"}"#).await["type"],
        "pong"
    );
    stack.stop().await;
}

#[tokio::test]
async fn verification_echoes_the_challenge_only_for_the_token() {
    let stack = Stack::start().await;
    let token = stack.setting("WHATSAPP_VERIFY_TOKEN");
    let verify = |token: String, mode: &'static str| {
        let url = stack.url(&format!(
            "/webhook?hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444"
        ));
        let http = stack.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(
        verify(token.clone(), "subscribe").await,
        (200, "1158201444".to_owned())
    );
    assert_eq!(verify("wrong".into(), "subscribe").await.0, 403);
    assert_eq!(verify(token, "unsubscribe").await.0, 403);
    stack.stop().await;
}

#[tokio::test]
async fn a_batch_of_1000_updates_counts_each_once() {
    let stack = Stack::start().await;
    let now = Utc::now();
    let buttons = [
        "RETRIEVE_CONTENT",
        "UNLOCK_CONTENT",
        "SHARE_WITH_CLIENTS",
        "CUSTOM_CTA",
    ];
    let messages: Vec<Value> = (0..1000)
        .map(|i| {
            let from = format!("9190000{:05}", i % 40);
            // Within today (UTC, the stack's zone), also just after midnight.
            let at = now - Duration::seconds(i % seconds_into_today(now));
            if i % 2 == 0 {
                click(
                    &format!("wamid.b{i}"),
                    &from,
                    at,
                    buttons[i as usize % 8 / 2],
                )
            } else {
                text(&format!("wamid.b{i}"), &from, at, "hi")
            }
        })
        .collect();
    let body = envelope(messages, vec![]);
    let (status, answer) = stack.deliver(&body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["data"],
        json!({"received": 1000, "stored": 1000, "duplicates": 0})
    );
    let (_, again) = stack.deliver(&body).await;
    assert_eq!(
        again["data"],
        json!({"received": 1000, "stored": 0, "duplicates": 1000})
    );
    let metrics = stack.data("/api/webhook/metrics?days=1").await;
    assert_eq!(metrics["button_clicks"]["total"], 500);
    for button in buttons {
        assert_eq!(
            metrics["button_clicks"]["by_button"][button], 125,
            "{button}"
        );
    }
    assert_eq!(metrics["messages"]["text"], 500);
    let chats = stack
        .data("/api/webhook/conversations?limit=100&active_minutes=60")
        .await;
    assert_eq!(chats["conversations"].as_array().unwrap().len(), 40);
    assert_eq!(chats["active_conversations"], 40);
    assert_eq!(chats["daily_chat_volume"], 500);
    stack.stop().await;
}

#[tokio::test]
async fn racing_duplicate_deliveries_count_once() {
    let stack = Stack::start().await;
    let now = Utc::now();
    let body = envelope(
        vec![
            click("wamid.r1", CUSTOMER, now, "UNLOCK_CONTENT"),
            text("wamid.r2", CUSTOMER, now, "hi"),
        ],
        vec![status("wamid.r3", "delivered", now, CUSTOMER)],
    );
    let answers = join_all((0..10).map(|_| stack.deliver(&body))).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let stored: i64 = answers
        .iter()
        .map(|(_, a)| a["data"]["stored"].as_i64().unwrap())
        .sum();
    assert_eq!(stored, 3);
    let metrics = stack.data("/api/webhook/metrics").await;
    assert_eq!(metrics["button_clicks"]["by_button"]["UNLOCK_CONTENT"], 1);
    assert_eq!(metrics["messages"]["total"], 1);
    assert_eq!(metrics["statuses"]["delivered"], 1);
    assert_eq!(metrics["delivery_success_rate"], 1.0);
    stack.stop().await;
}

#[tokio::test]
async fn late_retries_and_out_of_order_statuses_land_right() {
    let stack = Stack::start().await;
    let now = Utc::now();
    let two_days_ago = now - Duration::days(2);
    for body in [
        envelope(vec![], vec![status("wamid.o", "read", now, CUSTOMER)]),
        envelope(
            vec![text(
                "wamid.q",
                CUSTOMER,
                now - Duration::minutes(3),
                "any news?",
            )],
            vec![],
        ),
        envelope(
            vec![],
            vec![status(
                "wamid.o",
                "sent",
                now - Duration::minutes(1),
                CUSTOMER,
            )],
        ),
        // Another contact, so that this old click does not start the response above.
        envelope(
            vec![click(
                "wamid.old",
                "447700900123",
                two_days_ago,
                "RETRIEVE_CONTENT",
            )],
            vec![],
        ),
    ] {
        assert_eq!(stack.deliver(&body).await.0, 200);
    }
    let metrics = stack.data("/api/webhook/metrics?days=7").await;
    let daily = metrics["button_clicks"]["daily"].as_array().unwrap();
    let late_day = two_days_ago.date_naive().to_string();
    let day = daily
        .iter()
        .find(|d| d["date"] == late_day.as_str())
        .unwrap();
    assert_eq!(day["by_button"]["RETRIEVE_CONTENT"], 1, "{daily:?}");
    assert_eq!(daily.last().unwrap()["total"], 0);
    assert_eq!(
        (
            metrics["statuses"]["sent"].clone(),
            metrics["statuses"]["read"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(
        metrics["delivery_success_rate"], 1.0,
        "read counts as delivered"
    );
    let rt = &metrics["response_time_ms"];
    assert_eq!(rt["count"], 1);
    assert_eq!(
        rt["avg"], 120_000.0,
        "from the question to the first sent after it: {rt}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn data_routes_need_the_token_and_check_parameters() {
    let stack = Stack::start().await;
    for route in DATA_ROUTES {
        let response = stack.http.get(stack.url(route)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{route}");
        let wrong = stack
            .http
            .get(stack.url(route))
            .bearer_auth("dev-wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401, "{route}");
        assert_eq!(
            wrong.json::<Value>().await.unwrap()["error"]["code"],
            "unauthorized"
        );
    }
    // The scheme is case-insensitive (RFC 7235); the token is not.
    let token = stack.setting("DASHBOARD_TOKEN");
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let response = stack
            .http
            .get(stack.url("/api/webhook/metrics"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{scheme}");
    }
    for refused in [
        format!("Bearer {}", token.to_uppercase()),
        format!("Basic {token}"),
        format!("Bearer{token}"),
        token.clone(),
    ] {
        let response = stack
            .http
            .get(stack.url("/api/webhook/metrics"))
            .header("authorization", &refused)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{refused}");
    }
    for path in ["/health", "/api/webhook/health"] {
        let response = stack.http.get(stack.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let health: Value = response.json().await.unwrap();
        assert_eq!(health["status"], "healthy");
        assert_eq!(health["store"]["reachable"], true);
    }
    for bad in [
        "/api/webhook/metrics?days=0",
        "/api/webhook/metrics?days=91",
        "/api/webhook/metrics?days=seven",
        "/api/webhook/conversations?active_minutes=10081",
        "/api/webhook/conversations?limit=0",
        "/api/webhook/events/recent?type=bogus",
        "/api/webhook/events/recent?before=not-a-cursor",
    ] {
        let (status, body) = stack.get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{bad}");
    }
    let (status, body) = stack.get("/api/webhook/metrics?days=90").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["button_clicks"]["daily"]
            .as_array()
            .unwrap()
            .len(),
        90
    );
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    stack.stop().await;
}

#[tokio::test]
async fn events_filter_by_type_and_text_and_mask_numbers() {
    let stack = Stack::start().await;
    let now = Utc::now();
    let body = envelope(
        vec![
            text("wamid.t1", CUSTOMER, now, "Ça va? Need the NAV report"),
            click("wamid.t2", CUSTOMER, now, "SHARE_WITH_CLIENTS"),
        ],
        vec![status("wamid.t3", "failed", now, CUSTOMER)],
    );
    assert_eq!(stack.deliver(&body).await.0, 200);
    let by_type = stack
        .data("/api/webhook/events/recent?type=button_click")
        .await;
    assert_eq!(by_type["events"].as_array().unwrap().len(), 1);
    assert_eq!(by_type["events"][0]["button_id"], "SHARE_WITH_CLIENTS");
    assert_eq!(by_type["events"][0]["contact"]["wa_id"], "91•••••3210");
    let by_text = stack
        .data("/api/webhook/events/recent?q=%C3%A7A%20VA")
        .await;
    assert_eq!(by_text["events"].as_array().unwrap().len(), 1, "{by_text}");
    let by_name = stack.data("/api/webhook/events/recent?q=asha").await;
    assert_eq!(by_name["events"].as_array().unwrap().len(), 3);
    let page = stack.data("/api/webhook/events/recent?limit=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let rest = stack
        .data(&format!(
            "/api/webhook/events/recent?limit=2&before={}",
            page["next"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 1);
    assert!(rest.get("next").is_none());
    stack.stop().await;
}

#[tokio::test]
async fn the_dashboard_is_served_at_the_root_and_talks_to_this_stack() {
    let stack = Stack::start().await;
    let page = stack
        .http
        .get(stack.url("/"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-encoding"], "br");
    let ws_url = stack.stack.ws_url();
    let ws_origin = ws_url.trim_end_matches("/local");
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains(&format!("connect-src 'self' {ws_origin};")),
        "{policy}"
    );
    let config = json_of(stack.http.get(stack.url("/config.json"))).await;
    assert_eq!(config["websocket_url"], ws_url.as_str());
    // The page holds no data: the API behind it still needs the token.
    let without_token = stack.http.get(stack.url("/api/webhook/metrics")).send();
    assert_eq!(without_token.await.unwrap().status(), 401);
    stack.stop().await;
}

#[tokio::test]
async fn cors_answers_only_the_listed_origins() {
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        data_dir.path().join("local.env"),
        "CORS_ALLOWED_ORIGINS=https://ops.example.com\n",
    )
    .unwrap();
    let stack = Stack::start_in(data_dir, StoreKind::Sqlite).await;
    let preflight = |origin: &'static str| {
        stack
            .http
            .request(reqwest::Method::OPTIONS, stack.url("/api/webhook/metrics"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://ops.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://ops.example.com"
    );
    assert!(allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let token = stack.setting("DASHBOARD_TOKEN");
    let answer = stack
        .http
        .get(stack.url("/api/webhook/metrics"))
        .bearer_auth(&token)
        .header("origin", "https://ops.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://ops.example.com"
    );
    stack.stop().await;

    // Without the setting, no origin is allowed.
    let stack = Stack::start().await;
    let answer = stack
        .http
        .get(stack.url("/health"))
        .header("origin", "https://ops.example.com")
        .send()
        .await
        .unwrap();
    assert!(answer
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    stack.stop().await;
}

#[tokio::test]
async fn simulate_sends_until_ctrl_c_and_its_summary_matches_what_was_stored() {
    let stack = Stack::start().await;
    let simulate = Command::new(pulse_binary())
        .args(["simulate", "--url", &stack.url("/webhook"), "--data-dir"])
        .arg(stack.data_dir.path())
        .args(["--rate", "50", "--duration", "60s", "--duplicates", "0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    let interrupted = Command::new("kill")
        .args(["-INT", &simulate.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = tokio::task::spawn_blocking(move || simulate.wait_with_output().unwrap())
        .await
        .unwrap();
    let summary = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{summary}");
    let number = |after: &str| -> u64 {
        let (_, rest) = summary
            .split_once(after)
            .unwrap_or_else(|| panic!("{after:?} in {summary}"));
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let sent = number("Sent");
    assert!(
        (20..500).contains(&sent),
        "Ctrl-C stopped it early: {summary}"
    );
    assert!(summary.contains(" 0 errors."), "{summary}");
    let stored = number("accepted,");
    let mut listed = 0;
    let mut before = String::new();
    loop {
        let page = stack
            .data(&format!("/api/webhook/events/recent?limit=200{before}"))
            .await;
        listed += page["events"].as_array().unwrap().len() as u64;
        match page["next"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => break,
        }
    }
    assert_eq!(
        listed, stored,
        "the summary's stored events are the stack's: {summary}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_restart_shows_the_same_data() {
    let stack = Stack::start().await;
    let body = envelope(
        vec![click("wamid.s1", CUSTOMER, Utc::now(), "UNLOCK_CONTENT")],
        vec![],
    );
    assert_eq!(stack.deliver(&body).await.0, 200);
    let before = stack.data("/api/webhook/metrics").await;
    let token = stack.setting("DASHBOARD_TOKEN");
    let data_dir = stack.stop().await;
    let stack = Stack::start_in(data_dir, StoreKind::Sqlite).await;
    assert_eq!(
        stack.setting("DASHBOARD_TOKEN"),
        token,
        "generated settings are kept"
    );
    assert_eq!(
        stack.data("/api/webhook/metrics").await["button_clicks"],
        before["button_clicks"]
    );
    let (_, again) = stack.deliver(&body).await;
    assert_eq!(again["data"]["duplicates"], 1, "dedupe survives a restart");
    stack.stop().await;
}

#[tokio::test]
async fn the_dynamodb_mode_serves_the_same_api() {
    let stack = Stack::start_on_moto().await;
    assert!(
        stack.stack.store_description.starts_with("DynamoDB"),
        "{}",
        stack.stack.store_description
    );
    let now = Utc::now();
    let body = envelope(
        vec![click("wamid.d1", CUSTOMER, now, "UNLOCK_CONTENT")],
        vec![status("wamid.d2", "read", now, CUSTOMER)],
    );
    assert_eq!(stack.deliver(&body).await.1["data"]["stored"], 2);
    assert_eq!(stack.deliver(&body).await.1["data"]["duplicates"], 2);
    let metrics = stack.data("/api/webhook/metrics").await;
    assert_eq!(metrics["button_clicks"]["by_button"]["UNLOCK_CONTENT"], 1);
    assert_eq!(metrics["statuses"]["read"], 1);
    let recent = stack.data("/api/webhook/events/recent").await;
    assert_eq!(recent["events"].as_array().unwrap().len(), 2);
    stack.stop().await;
}

/// An account quiet for weeks: the event log's first page, the realtime figures
/// and `/health` still show its last events, on both stores. The events are
/// spread over more weeks than one DynamoDB store call walks.
async fn a_quiet_account_still_shows_its_last_events(stack: Stack) {
    let now = Utc::now();
    let ages = [20, 45, 80];
    let messages = ages
        .iter()
        .map(|days| {
            click(
                &format!("wamid.quiet{days}"),
                CUSTOMER,
                now - Duration::days(*days),
                "UNLOCK_CONTENT",
            )
        })
        .collect();
    assert_eq!(stack.deliver(&envelope(messages, vec![])).await.0, 200);
    let newest = (now - Duration::days(20)).timestamp();
    let page = stack.data("/api/webhook/events/recent?limit=10").await;
    let times: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            chrono::DateTime::parse_from_rfc3339(e["occurred_at"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    let expected: Vec<i64> = ages
        .iter()
        .map(|d| (now - Duration::days(*d)).timestamp())
        .collect();
    assert_eq!(
        times, expected,
        "every event on the first page, newest first"
    );
    assert!(page.get("next").is_none(), "no older page: {page}");
    let clicks = stack
        .data("/api/webhook/events/recent?type=button_click&limit=2")
        .await;
    assert_eq!(clicks["events"].as_array().unwrap().len(), 2);
    assert!(clicks["next"].is_string(), "an older click is left");
    let texts = stack
        .data("/api/webhook/events/recent?type=text_message")
        .await;
    assert_eq!(
        texts,
        json!({"events": []}),
        "no text at all: empty, no next"
    );
    let realtime = stack.data("/api/webhook/stats/realtime").await;
    let last = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["last_event_at"].as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    assert_eq!(last(&realtime), newest);
    let health = json_of(stack.http.get(stack.url("/health"))).await;
    assert_eq!(last(&health), newest);
    stack.stop().await;
}

#[tokio::test]
async fn a_quiet_account_still_shows_its_last_events_on_sqlite() {
    a_quiet_account_still_shows_its_last_events(Stack::start().await).await;
}

#[tokio::test]
async fn a_quiet_account_still_shows_its_last_events_on_dynamodb() {
    a_quiet_account_still_shows_its_last_events(Stack::start_on_moto().await).await;
}

/// The funnel and failures routes over HTTP, with the names the API promises.
async fn the_funnel_routes_answer_a_known_history(stack: Stack) {
    let now = Utc::now();
    let base = (now - Duration::days(3))
        .duration_trunc(Duration::days(1))
        .unwrap()
        + Duration::hours(9);
    for body in click_to_unlock_scenario(base).iter().rev() {
        assert_eq!(stack.deliver(body).await.0, 200);
    }
    let funnel = stack.data("/api/webhook/funnel?days=7").await;
    let stages = |v: &Value| {
        ["sent", "delivered", "read", "clicked", "failed"].map(|stage| v[stage].as_i64().unwrap())
    };
    assert_eq!(stages(&funnel), [6, 3, 2, 1, 3]);
    assert_eq!(stages(&funnel["by_category"]["utility"]), [3, 2, 2, 1, 1]);
    assert_eq!(funnel["daily"].as_array().unwrap().len(), 7);
    assert_eq!(funnel["window"]["days"], 7);
    assert_eq!(funnel["clicks"]["total"], 2);
    assert_eq!(funnel["clicks"]["unattributed"], 1);
    assert_eq!(funnel["rates"]["delivered"], 0.5);
    assert_eq!(funnel["answers"]["answered_delivered"], 1);
    assert_eq!(funnel["answers"]["answer_ms"]["avg"], 60_000.0);
    assert_eq!(funnel["time_to_read_ms"]["count"], 2);
    let failures = stack.data("/api/webhook/failures?days=7").await;
    assert_eq!(failures["total"], 3);
    let first = &failures["codes"][0];
    assert_eq!(
        (&first["code"], &first["messages"], &first["contacts"]),
        (&json!(131_049), &json!(2), &json!(1))
    );
    assert_eq!(first["daily"].as_array().unwrap().len(), 7);
    let (status, _) = stack.get("/api/webhook/funnel?days=91").await;
    assert_eq!(status, 400);

    // The contacts behind the figures: a segment, a failure code, one contact
    // and its timeline.
    assert_eq!(
        funnel["contacts"],
        json!({"engaged": 1, "reading": 1, "unread": 0, "unreached": 2, "none": 0})
    );
    let contacts = stack.data("/api/webhook/contacts?days=7").await;
    assert_eq!(contacts["contacts"].as_array().unwrap().len(), 4);
    let unreached = stack
        .data("/api/webhook/contacts?days=7&segment=unreached")
        .await;
    let unreached = unreached["contacts"].as_array().unwrap();
    assert_eq!(unreached.len(), 2);
    assert!(unreached.iter().all(|c| c["segment"] == "unreached"));
    let failed = stack.data("/api/webhook/contacts?days=7&code=131049").await;
    let failed = failed["contacts"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["last_failure_code"], 131_049);
    let key = failed[0]["key"].as_str().unwrap();
    let body = stack
        .get("/api/webhook/contacts?days=7&segment=unreached&limit=1")
        .await
        .1;
    let next = body["data"]["next"].as_str().unwrap().to_owned();
    assert!(!next.contains(ADVISORS[2]) && !key.contains("0003"));
    let second = stack
        .data(&format!(
            "/api/webhook/contacts?days=7&segment=unreached&limit=1&cursor={next}"
        ))
        .await;
    assert_ne!(
        second["contacts"][0]["key"],
        body["data"]["contacts"][0]["key"]
    );
    let one = stack
        .data(&format!("/api/webhook/contacts/{key}?days=7"))
        .await;
    assert_eq!(one["key"], key);
    assert_eq!(
        (&one["window"]["sent"], &one["window"]["failed"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(one["lifetime"]["failed"], 2);
    let timeline = stack
        .data(&format!("/api/webhook/events/recent?contact={key}"))
        .await;
    assert_eq!(
        timeline["events"].as_array().unwrap().len(),
        4,
        "two sends, two failures"
    );
    for (path, status) in [
        ("/api/webhook/contacts/not-a-key", 404),
        ("/api/webhook/contacts?segment=loyal", 400),
        ("/api/webhook/contacts?code=abc", 400),
        ("/api/webhook/contacts?cursor=1.2", 400),
        ("/api/webhook/events/recent?contact=not-a-key", 400),
    ] {
        assert_eq!(stack.get(path).await.0, status, "{path}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn the_funnel_routes_answer_a_known_history_on_sqlite() {
    the_funnel_routes_answer_a_known_history(Stack::start().await).await;
}

#[tokio::test]
async fn the_funnel_routes_answer_a_known_history_on_dynamodb() {
    the_funnel_routes_answer_a_known_history(Stack::start_on_moto().await).await;
}

#[tokio::test]
async fn a_busy_hour_on_dynamodb_counts_each_update_once() {
    // 300 updates from 30 contacts in deliveries of up to 50, each delivery sent
    // twice at once, and the first three again inside a mixed redelivery: the
    // realistic load of the DynamoDB mode, with duplicates racing.
    let stack = Stack::start_on_moto().await;
    // Within the last 50 minutes and within today (UTC, the stack's zone).
    let now = Utc::now();
    let span = seconds_into_today(now).min(50 * 60);
    let start = now - Duration::seconds(span);
    let buttons = ["RETRIEVE_CONTENT", "UNLOCK_CONTENT", "SHARE_WITH_CLIENTS"];
    let mut updates = Vec::new();
    for i in 0..100i64 {
        let from = format!("4479000{:05}", i % 30);
        // Replies come 9 s after: keep those before now too.
        let at = start + Duration::seconds((span - 10).max(0) * i / 100);
        updates.push((
            true,
            click(&format!("wamid.h{i}c"), &from, at, buttons[i as usize % 3]),
        ));
        updates.push((true, text(&format!("wamid.h{i}t"), &from, at, "hello")));
        let reply = format!("wamid.h{i}o");
        let read = status(&reply, "read", at + Duration::seconds(9), &from);
        updates.push((false, read));
    }
    let body_of = |share: &[(bool, Value)]| {
        let (messages, statuses): (Vec<_>, Vec<_>) = share.iter().cloned().partition(|(m, _)| *m);
        envelope(
            messages.into_iter().map(|(_, v)| v).collect(),
            statuses.into_iter().map(|(_, v)| v).collect(),
        )
    };
    let mut bodies: Vec<Vec<u8>> = updates.chunks(50).map(body_of).collect();
    bodies.push(body_of(&updates[..150]));
    let posts = bodies
        .iter()
        .flat_map(|body| [stack.deliver(body), stack.deliver(body)]);
    let answers = join_all(posts).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let stored: i64 = answers
        .iter()
        .map(|(_, a)| a["data"]["stored"].as_i64().unwrap())
        .sum();
    assert_eq!(stored, 300);
    let metrics = stack.data("/api/webhook/metrics?days=1").await;
    assert_eq!(metrics["button_clicks"]["total"], 100);
    for button in buttons {
        let expected = if button == "RETRIEVE_CONTENT" { 34 } else { 33 };
        assert_eq!(
            metrics["button_clicks"]["by_button"][button], expected,
            "{button}"
        );
    }
    assert_eq!(metrics["messages"]["text"], 100);
    assert_eq!(metrics["statuses"]["read"], 100);
    assert_eq!(metrics["delivery_success_rate"], 1.0);
    let chats = stack
        .data("/api/webhook/conversations?limit=100&active_minutes=60")
        .await;
    assert_eq!(chats["conversations"].as_array().unwrap().len(), 30);
    stack.stop().await;
}

#[tokio::test]
async fn ctrl_c_stops_the_binary_cleanly_and_loses_nothing() {
    let data_dir = tempfile::tempdir().unwrap();
    let (port, ws_port) = (free_port(), free_port());
    let mut pulse = spawn_pulse(data_dir.path(), port, ws_port).await;
    let settings = pulse_local::stack::read_env_file(&data_dir.path().join("local.env"));
    let body = envelope(
        vec![click("wamid.k1", CUSTOMER, Utc::now(), "RETRIEVE_CONTENT")],
        vec![],
    );
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhook"))
        .header(
            "x-hub-signature-256",
            sign(settings["WHATSAPP_APP_SECRET"].as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut dashboard = ws_connect(&format!(
        "ws://127.0.0.1:{ws_port}/local?token={}",
        settings["DASHBOARD_TOKEN"]
    ))
    .await
    .expect("the dashboard connects");
    let interrupted = Command::new("kill")
        .args(["-INT", &pulse.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let exit = tokio::task::spawn_blocking(move || pulse.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "pulse exited with {exit:?} on Ctrl-C");
    assert!(
        closed(&mut dashboard).await,
        "a connected dashboard is closed, not left hanging"
    );

    let port = free_port();
    let mut pulse = spawn_pulse(data_dir.path(), port, free_port()).await;
    let metrics = json_of(
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/webhook/metrics"))
            .bearer_auth(&settings["DASHBOARD_TOKEN"]),
    )
    .await;
    let _ = pulse.kill();
    let _ = pulse.wait();
    assert_eq!(
        metrics["data"]["button_clicks"]["by_button"]["RETRIEVE_CONTENT"],
        1
    );
}

#[tokio::test]
async fn the_banner_shows_generated_secrets_and_never_given_ones() {
    let data_dir = tempfile::tempdir().unwrap();
    let (port, ws_port) = (free_port(), free_port());
    let given_token = "given-dashboard-token-0123456789abcdef";
    let given_secret = "given-app-secret-0123456789abcdef";
    let mut pulse = Command::new(pulse_binary())
        .args(["serve", "--http-port", &port.to_string()])
        .args(["--ws-port", &ws_port.to_string(), "--data-dir"])
        .arg(data_dir.path())
        .env("DASHBOARD_TOKEN", given_token)
        .env("WHATSAPP_APP_SECRET", given_secret)
        .env_remove("WHATSAPP_VERIFY_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = pulse.stdout.take().unwrap();
    let banner = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut banner = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("Ctrl-C stops") {
                break;
            }
        }
        banner
    })
    .await
    .unwrap();
    pulse.kill().unwrap();
    pulse.wait().unwrap();

    assert!(banner.contains("Ctrl-C stops"), "{banner}");
    assert!(!banner.contains(given_token), "{banner}");
    assert!(!banner.contains(given_secret), "{banner}");
    assert!(banner.contains("DASHBOARD_TOKEN: given in the environment, not shown"));
    assert!(banner.contains("Bearer $DASHBOARD_TOKEN"), "{banner}");
    let file = pulse_local::stack::read_env_file(&data_dir.path().join("local.env"));
    assert!(
        !file.contains_key("DASHBOARD_TOKEN"),
        "a given secret is not written"
    );
    assert!(
        banner.contains(&format!(
            "WHATSAPP_VERIFY_TOKEN={}",
            file["WHATSAPP_VERIFY_TOKEN"]
        )),
        "the generated one is shown, to be used: {banner}"
    );
}

#[tokio::test]
async fn serve_listens_on_the_host_it_is_given_and_only_there() {
    let data_dir = tempfile::tempdir().unwrap();
    let (port, ws_port) = (free_port(), free_port());
    // Another loopback address: reachable here, and not 127.0.0.1.
    let mut pulse = Command::new(pulse_binary())
        .args([
            "serve",
            "--host",
            "127.0.0.2",
            "--http-port",
            &port.to_string(),
        ])
        .args(["--ws-port", &ws_port.to_string(), "--data-dir"])
        .arg(data_dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut health = None;
    for _ in 0..100 {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.2:{port}/health")).await {
            health = Some(response.status().as_u16());
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let elsewhere = reqwest::get(format!("http://127.0.0.1:{port}/health")).await;
    pulse.kill().unwrap();
    pulse.wait().unwrap();
    assert_eq!(health, Some(200), "it answers on --host");
    assert!(elsewhere.is_err(), "and not on 127.0.0.1");
}

/// Runs a command to its end; its standard output, or a failure with both outputs.
fn succeeds(command: &mut Command) -> String {
    let output = command.output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?}: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

#[test]
fn bench_intake_loads_its_own_stack_and_checks_the_count() {
    // Closed loop and open loop, briefly: both must end with every stored event
    // counted by the metrics API, or the command fails.
    for args in [
        &["--updates", "20", "--duration", "1s", "--connections", "4"][..],
        &["--rate", "50", "--duration", "1s"][..],
    ] {
        let text = succeeds(
            Command::new(pulse_binary())
                .args(["bench", "intake"])
                .args(args),
        );
        assert!(text.contains("(exact)"), "{text}");
        let answered: u64 = text
            .split_once("requests")
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
            .unwrap();
        assert!(answered > 0, "{text}");
        assert!(
            text.contains(" 0 failed") && text.contains("VmHWM) "),
            "{text}"
        );
    }
}

#[test]
fn bench_live_sees_every_event_reach_every_client() {
    // The benchmark fails if a client misses an event, so a change in what
    // clients are sent (ids masked, say) cannot leave it measuring nothing.
    let text = succeeds(Command::new(pulse_binary()).args([
        "bench",
        "live",
        "--clients",
        "1,3",
        "--events",
        "3",
    ]));
    // A block per client count: its label line, then its figures indented.
    let events = |label: &str| {
        text.lines()
            .skip_while(|line| *line != label)
            .skip(1)
            .take_while(|line| line.starts_with(' '))
            .find_map(|line| line.trim_start().strip_prefix("events"))
            .map(str::trim_start)
    };
    for (clients, row) in [
        ("1 client", "3 posted, 3 samples"),
        ("3 clients", "3 posted, 9 samples"),
    ] {
        assert!(
            events(clients).is_some_and(|figure| figure.starts_with(row)),
            "no {clients:?} with {row:?} in:\n{text}"
        );
    }
}

/// Whether `value` has the shape `schema` describes (objects, arrays, `$ref`,
/// `allOf`, `oneOf`, `enum`; scalars by JSON type), else where it differs. An
/// object may hold only documented keys (`strict`), or, as one part of an
/// `allOf`, any keys as long as those it names fit.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    check(doc, schema, value, at, true)
}

fn check(doc: &Value, schema: &Value, value: &Value, at: &str, strict: bool) -> Result<(), String> {
    let schema = &resolve(doc, schema);
    if let Some(parts) = schema["oneOf"].as_array() {
        return parts
            .iter()
            .find(|part| check(doc, part, value, at, strict).is_ok())
            .map(|_| ())
            .ok_or_else(|| format!("{at}: {value} matches no oneOf variant"));
    }
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            check(doc, part, value, at, false)?;
        }
        if strict {
            let named = named_keys(doc, schema, value);
            for key in value.as_object().into_iter().flatten().map(|(k, _)| k) {
                if !named.contains(key) {
                    return Err(format!("{at}: {key} is not documented"));
                }
            }
        }
        return Ok(());
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
    if !fits {
        return Err(format!("{at}: {actual} where {types:?} is documented"));
    }
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(doc, &schema["items"], item, &format!("{at}[{i}]"), true)?;
            }
        }
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            for (key, v) in map {
                let at = format!("{at}.{key}");
                match props.and_then(|p| p.get(key)) {
                    Some(sub) => check(doc, sub, v, &at, true)?,
                    None if schema["additionalProperties"].is_object() => {
                        check(doc, &schema["additionalProperties"], v, &at, true)?;
                    }
                    None if strict => return Err(format!("{at} is not documented")),
                    None => {}
                }
            }
            for key in schema["required"].as_array().into_iter().flatten() {
                let key = key.as_str().unwrap();
                if !map.contains_key(key) {
                    return Err(format!("{at}: required {key} missing"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The keys an `allOf` names, counting only the `oneOf` variant `value` takes.
fn named_keys(doc: &Value, schema: &Value, value: &Value) -> std::collections::BTreeSet<String> {
    let schema = resolve(doc, schema);
    let mut keys: std::collections::BTreeSet<String> = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        keys.extend(named_keys(doc, part, value));
    }
    if let Some(variant) = schema["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| check(doc, v, value, "", false).is_ok())
    {
        keys.extend(named_keys(doc, variant, value));
    }
    keys
}

fn resolve(doc: &Value, schema: &Value) -> Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")].clone()
        }
        None => schema.clone(),
    }
}

/// The dashboard's API types are generated from `dashboard/openapi.json`
/// (`npm run types`): it must be the document the API serves.
#[tokio::test]
async fn the_committed_openapi_document_is_the_one_served() {
    let stack = Stack::start().await;
    let served: Value = json_of(stack.http.get(stack.url("/api/openapi.json"))).await;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboard/openapi.json");
    let committed: Option<Value> = std::fs::read(&file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if committed.as_ref() != Some(&served) {
        if std::env::var_os("PULSE_UPDATE_OPENAPI").is_some() {
            let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
            std::fs::write(&file, text).unwrap();
        } else {
            panic!(
                "{} is not the document GET /api/openapi.json serves: run \
                 `PULSE_UPDATE_OPENAPI=1 cargo nextest run -p pulse-tests --test e2e committed_openapi`, \
                 then `cd dashboard && npm run types`, and commit both",
                file.display()
            );
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn the_openapi_description_documents_what_every_route_answers() {
    let stack = Stack::start().await;
    let now = Utc::now();
    let body = envelope(
        vec![
            click("wamid.o1", CUSTOMER, now, "UNLOCK_CONTENT"),
            text("wamid.o2", CUSTOMER, now, "hi"),
        ],
        vec![status("wamid.o3", "sent", now, CUSTOMER)],
    );
    let (_, delivered) = stack.deliver(&body).await;
    // The funnel routes answer with every part filled.
    let base = (now - Duration::days(3))
        .duration_trunc(Duration::days(1))
        .unwrap();
    for update in click_to_unlock_scenario(base) {
        assert_eq!(stack.deliver(&update).await.0, 200);
    }
    // No token needed: it holds no data.
    let doc: Value = stack
        .http
        .get(stack.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec!["/health", "/webhook"];
    expected.extend(data_paths());
    expected.sort_unstable();
    let mut documented_sorted = documented.clone();
    documented_sorted.sort_unstable();
    assert_eq!(documented_sorted, expected);

    let success = |path: &str, method: &str| {
        doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
            .clone()
    };
    conforms(
        &doc,
        &success("/webhook", "post"),
        &delivered,
        "POST /webhook",
    )
    .unwrap();
    let (_, health) = stack.get("/health").await;
    conforms(&doc, &success("/health", "get"), &health, "/health").unwrap();
    let contacts = stack.data("/api/webhook/contacts").await;
    let key = contacts["contacts"][0]["key"].as_str().unwrap().to_owned();
    for path in data_paths() {
        assert_eq!(
            doc["paths"][path]["get"]["security"],
            json!([{"dashboard_token": []}]),
            "{path}"
        );
        let (status, answer) = stack.get(&path.replace("{key}", &key)).await;
        assert_eq!(status, 200, "{path}");
        conforms(&doc, &success(path, "get"), &answer, path).unwrap();
    }
    let (status, refused) = stack.get("/api/webhook/metrics?days=0").await;
    assert_eq!(status, 400);
    let failure = &doc["paths"]["/api/webhook/metrics"]["get"]["responses"]["400"]["content"]
        ["application/json"]["schema"];
    conforms(&doc, failure, &refused, "400").unwrap();
    // The checker itself refuses what the description does not say.
    let mut odd = stack.get("/api/webhook/stats/realtime").await.1;
    odd["data"]["surprise"] = json!(1);
    assert!(conforms(
        &doc,
        &success("/api/webhook/stats/realtime", "get"),
        &odd,
        "odd"
    )
    .is_err());
    stack.stop().await;
}

#[test]
fn cli_errors_say_what_failed_and_why() {
    // Each cause in the chain, outermost first, on one line.
    let data_dir = tempfile::tempdir().unwrap();
    let missing = data_dir.path().join("missing.ndjson");
    let output = Command::new(pulse_binary())
        .arg("import")
        .arg(&missing)
        .arg("--data-dir")
        .arg(data_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "pulse: cannot read {}: No such file",
            missing.display()
        )),
        "{stderr}"
    );

    let port = free_port();
    let output = Command::new(pulse_binary())
        .args(["send", "--url", &format!("http://127.0.0.1:{port}/webhook")])
        .arg("--data-dir")
        .arg(data_dir.path())
        .arg("../events/whatsapp/text_message.json")
        .env("WHATSAPP_APP_SECRET", "s")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pulse: "))
        .unwrap_or_default();
    assert!(
        line.contains("cannot reach") && line.contains("(is `pulse serve` running?): "),
        "{stderr}"
    );
    assert!(
        line.to_lowercase().contains("connect"),
        "the cause is kept: {stderr}"
    );
}

/// Seconds from UTC midnight to `now`, at least 1: WhatsApp times no older than
/// this count today.
fn seconds_into_today(now: chrono::DateTime<Utc>) -> i64 {
    let midnight = now.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    (now - midnight).num_seconds().max(1)
}
