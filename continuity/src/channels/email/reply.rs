//! The text a patient wrote, without the history their client quoted below
//! it, so a reply does not repeat earlier turns. Clients mark quotes
//! differently: Gmail, Apple Mail and Thunderbird write "On <date>, <name>
//! wrote:" (sometimes wrapped over two lines) then `>` lines; Outlook
//! writes "-----Original Message-----" or a "From: / Sent:" block, or a
//! line of underscores (Outlook on the web); forwards have "Forwarded
//! message" markers. Text after a signature delimiter ("-- ") is dropped.
//! Interleaved replies keep the patient's own lines and drop the `>` ones.

/// The new text of a reply, trimmed.
pub fn reply_text(body: &str) -> String {
    let lines: Vec<&str> = body.lines().map(|l| l.trim_end_matches('\r')).collect();
    let cut = (0..lines.len()).find(|&i| starts_quote(&lines, i)).unwrap_or(lines.len());
    let kept: Vec<&str> = lines[..cut].iter().copied().filter(|l| !l.trim_start().starts_with('>')).collect();
    kept.join("\n").trim().to_owned()
}

fn starts_quote(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    if line == "--" && lines[i].starts_with("-- ") || lines[i] == "-- " {
        return true;
    }
    let lower = line.to_ascii_lowercase();
    if lower.starts_with("-----original message-----")
        || lower.starts_with("-------- original message --------")
        || lower.contains("forwarded message ---")
        || lower.starts_with("begin forwarded message:")
    {
        return true;
    }
    if line.len() >= 20 && line.bytes().all(|b| b == b'_') {
        return true;
    }
    // "On Tue, 1 Dec 2026 at 09:00, Clinic <a@b> wrote:", possibly wrapped;
    // "Le ... a écrit :", "Am ... schrieb ...:".
    let opener = ["On ", "Le ", "Am "].iter().any(|p| line.starts_with(p));
    if opener {
        // The attribution may wrap: try it as one, two and three lines.
        let mut joined = String::new();
        for l in &lines[i..lines.len().min(i + 3)] {
            joined.push_str(l.trim());
            if joined.ends_with("wrote:")
                || joined.ends_with("écrit :")
                || joined.contains("schrieb") && joined.ends_with(':')
            {
                return true;
            }
            joined.push(' ');
        }
    }
    // Outlook desktop: "From: ..." followed within a few lines by "Sent:".
    if line.starts_with("From:") {
        return lines[i + 1..lines.len().min(i + 5)].iter().any(|l| {
            let l = l.trim_start();
            l.starts_with("Sent:") || l.starts_with("Date:")
        });
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_attribution_and_quotes_go() {
        let body = "Could we make it 3 PM?\r\n\r\nOn Tue, Dec 1, 2026 at 9:00 AM Sunrise Clinic <\r\nappointments@sunrise.example> wrote:\r\n> Your appointment is booked.\r\n";
        assert_eq!(reply_text(body), "Could we make it 3 PM?");
    }

    #[test]
    fn outlook_blocks_go() {
        let body = "3 PM please.\n\n-----Original Message-----\nFrom: Sunrise\nSent: Tuesday\nbooked\n";
        assert_eq!(reply_text(body), "3 PM please.");
        let body =
            "3 PM please.\n\nFrom: Sunrise Clinic <a@b.example>\nSent: Tuesday, December 1, 2026 9:00 AM\nTo: me\n";
        assert_eq!(reply_text(body), "3 PM please.");
        let body = "3 PM please.\n________________________________\nFrom: Sunrise Clinic\n";
        assert_eq!(reply_text(body), "3 PM please.");
    }

    #[test]
    fn interleaved_and_signature() {
        let body = "> Is Tuesday good?\nYes, but 3 PM.\n> Anything else?\nNo.\n-- \nMaria\n";
        assert_eq!(reply_text(body), "Yes, but 3 PM.\nNo.");
    }

    #[test]
    fn a_line_starting_with_on_is_not_a_quote() {
        assert_eq!(reply_text("On second thought, 3 PM.\nThanks"), "On second thought, 3 PM.\nThanks");
        assert_eq!(reply_text("From: now on I use this address"), "From: now on I use this address");
    }
}
