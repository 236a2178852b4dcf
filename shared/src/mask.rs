//! Masking of phone numbers (WhatsApp ids) wherever Pulse shows them.

/// `919876543210` → `91•••••3210`. The middle is always five dots, so the mask
/// does not tell the number's length either; short ids keep at most their last two
/// characters.
pub fn mask_phone(wa_id: &str) -> String {
    const DOTS: &str = "•••••";
    let chars: Vec<char> = wa_id.chars().collect();
    match chars.len() {
        n if n >= 8 => {
            let head: String = chars[..2].iter().collect();
            let tail: String = chars[n - 4..].iter().collect();
            format!("{head}{DOTS}{tail}")
        }
        n if n >= 4 => format!("{DOTS}{}", chars[n - 2..].iter().collect::<String>()),
        _ => DOTS.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_phone;

    #[test]
    fn masks_the_middle() {
        assert_eq!(mask_phone("919876543210"), "91•••••3210");
        assert_eq!(mask_phone("16315551181"), "16•••••1181");
        assert_eq!(mask_phone("US.13491208655302741918"), "US•••••1918");
        assert_eq!(mask_phone("12345"), "•••••45");
        assert_eq!(mask_phone("12"), "•••••");
        assert_eq!(mask_phone(""), "•••••");
    }
}
