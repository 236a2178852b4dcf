//! `pulse send`: signs WhatsApp payload files as Meta would and posts them.

use anyhow::Context;
use std::path::PathBuf;

use pulse_shared::signature::{sign, SIGNATURE_HEADER};
use serde_json::Value;

/// The outcome of posting one file.
#[derive(Debug)]
pub struct Sent {
    pub file: PathBuf,
    pub status: u16,
    pub body: String,
}

/// Posts each file with its `X-Hub-Signature-256`: the exact bytes with
/// `keep_timestamps`, else with its times moved to now (see [`shift_to_now`]).
pub async fn send_files(
    url: &str,
    secret: &str,
    files: &[PathBuf],
    keep_timestamps: bool,
) -> anyhow::Result<Vec<Sent>> {
    let client = reqwest::Client::new();
    let mut sent = Vec::with_capacity(files.len());
    for file in files {
        let mut body =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        if !keep_timestamps {
            body = shift_to_now(&body, chrono::Utc::now().timestamp()).unwrap_or(body);
        }
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, sign(secret.as_bytes(), &body))
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {url} (is `pulse serve` running?)"))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        sent.push(Sent {
            file: file.clone(),
            status,
            body,
        });
    }
    Ok(sent)
}

/// Moves every WhatsApp `timestamp` (and each entry's `time`) by the same amount,
/// so that the newest is `now` and the spacing between them stays: a sample sent
/// today counts today, and a sample conversation keeps its response time. `None`
/// when the body is not JSON or has no times (it is then sent as it is).
pub fn shift_to_now(body: &[u8], now: i64) -> Option<Vec<u8>> {
    let mut payload: Value = serde_json::from_slice(body).ok()?;
    let mut newest = None;
    visit_times(&mut payload, false, &mut |t| newest = newest.max(Some(*t)));
    let offset = now - newest?;
    visit_times(&mut payload, false, &mut |t| *t += offset);
    serde_json::to_vec(&payload).ok()
}

/// Calls `f` on every time: `timestamp` fields anywhere, `time` of entries.
fn visit_times(value: &mut Value, is_entry: bool, f: &mut impl FnMut(&mut i64)) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let is_time = key == "timestamp" || (is_entry && key == "time");
                match item {
                    Value::String(text) if is_time => {
                        if let Ok(mut seconds) = text.parse::<i64>() {
                            f(&mut seconds);
                            *text = seconds.to_string();
                        }
                    }
                    Value::Number(number) if is_time => {
                        if let Some(mut seconds) = number.as_i64() {
                            f(&mut seconds);
                            *item = Value::from(seconds);
                        }
                    }
                    _ => visit_times(item, key == "entry", f),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| visit_times(item, is_entry, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::shift_to_now;
    use serde_json::json;

    #[test]
    fn shifts_all_times_keeping_their_spacing() {
        let body = json!({"entry": [{"time": 900, "changes": [{"value": {
            "messages": [{"timestamp": "1000"}, {"timestamp": "1060"}],
            "statuses": [{"timestamp": 1030, "conversation": {"expiration_timestamp": "5"}}]}}]}]});
        let shifted: serde_json::Value =
            serde_json::from_slice(&shift_to_now(body.to_string().as_bytes(), 10_060).unwrap())
                .unwrap();
        let value = &shifted["entry"][0]["changes"][0]["value"];
        assert_eq!(shifted["entry"][0]["time"], 9_900);
        assert_eq!(value["messages"][0]["timestamp"], "10000");
        assert_eq!(value["messages"][1]["timestamp"], "10060");
        assert_eq!(value["statuses"][0]["timestamp"], 10_030);
        assert_eq!(
            value["statuses"][0]["conversation"]["expiration_timestamp"],
            "5"
        );
        assert_eq!(shift_to_now(b"not json", 1), None);
        assert_eq!(shift_to_now(br#"{"entry": []}"#, 1), None);
    }
}
