//! Timestamp spellings AWS uses in events and failure records.
use chrono::{DateTime, SecondsFormat, Utc};

fn to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

/// `2019-11-14T00:38:06.021Z` (Kinesis batch info, failure record `timestamp`).
pub fn iso_millis(ms: i64) -> String {
    to_utc(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `2019-11-14T00:38:06Z` (DynamoDB batch info: whole seconds).
pub fn iso_seconds(ms: i64) -> String {
    to_utc(ms).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `Jan 1, 1970, 12:33:41 AM`, UTC: Java's medium date-time style, as AWS writes the
/// `timestamp` of a RabbitMQ message's `basicProperties`.
pub fn java_medium(ms: i64) -> String {
    to_utc(ms).format("%b %-d, %Y, %-I:%M:%S %p").to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn spellings() {
        assert_eq!(iso_millis(1_573_691_886_021), "2019-11-14T00:38:06.021Z");
        assert_eq!(iso_seconds(1_573_691_886_021), "2019-11-14T00:38:06Z");
        // AWS's documented RabbitMQ example: a timestamp of 2021 s.
        assert_eq!(java_medium(2_021_000), "Jan 1, 1970, 12:33:41 AM");
        assert_eq!(java_medium(1_700_000_000_000), "Nov 14, 2023, 10:13:20 PM");
    }
}
