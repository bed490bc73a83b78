//! A minimal iCalendar (RFC 5545) writer for a lawyer's appointment feed.

use std::fmt::Write;

use super::civil::{Instant, date_of};

#[derive(Debug, Clone)]
pub struct Event {
    pub uid: String,
    pub start: Instant,
    pub end: Instant,
    /// When the event last changed.
    pub stamp: Instant,
    pub summary: String,
    pub description: String,
    pub cancelled: bool,
}

/// `20261201T060000Z`
fn utc(at: Instant) -> String {
    let date = date_of(at.div_euclid(86_400));
    let secs = at.rem_euclid(86_400);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        date.year(),
        date.month(),
        date.day(),
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// TEXT value escaping: backslash, semicolon, comma and newlines.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded at 75 octets without splitting a character.
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// A whole calendar.
pub fn calendar(name: &str, events: &[Event]) -> String {
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//Cloud Law Office//Appointments//EN");
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "METHOD:PUBLISH");
    line(&mut out, &format!("X-WR-CALNAME:{}", escape(name)));
    for event in events {
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}", escape(&event.uid)));
        line(&mut out, &format!("DTSTAMP:{}", utc(event.stamp)));
        line(&mut out, &format!("DTSTART:{}", utc(event.start)));
        line(&mut out, &format!("DTEND:{}", utc(event.end)));
        line(&mut out, &format!("SUMMARY:{}", escape(&event.summary)));
        let mut description = String::new();
        let _ = write!(description, "DESCRIPTION:{}", escape(&event.description));
        line(&mut out, &description);
        line(&mut out, if event.cancelled { "STATUS:CANCELLED" } else { "STATUS:CONFIRMED" });
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_lines() {
        let event = Event {
            uid: "a1@cloudlaw".into(),
            start: 1_796_104_800,
            end: 1_796_106_600,
            stamp: 1_796_000_000,
            summary: "法律咨询 consultation; land, bo".into(),
            description:
                "Terminal: 新都桥镇公共法律服务站 Xinduqiao township legal service station\nTopic: land"
                    .into(),
            cancelled: false,
        };
        let text = calendar("Appointments", &[event]);
        assert!(text.starts_with("BEGIN:VCALENDAR\r\n"));
        assert!(text.ends_with("END:VCALENDAR\r\n"));
        assert!(text.contains("DTSTART:20261201T060000Z\r\n"), "{text}");
        assert!(text.contains("SUMMARY:法律咨询 consultation\\; land\\, bo"));
        for l in text.split("\r\n") {
            assert!(l.len() <= 75, "folded: {l:?}");
            assert!(!l.contains('\n'));
        }
        // Unfolding gives the description back.
        let unfolded = text.replace("\r\n ", "");
        assert!(unfolded.contains("Xinduqiao township legal service station\\nTopic: land"));
    }
}
