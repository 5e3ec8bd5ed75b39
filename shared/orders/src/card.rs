//! The card check an order waits for, the store's one synchronous step: the number's shape
//! and Luhn checksum, the expiry, and a stand-in for the payment provider's answer.
//!
//! There is no real provider here, so declines are deterministic, on the well-known test
//! numbers (the same as Stripe's): `4000 0000 0000 0002` is declined, `4000 0000 0000 9995`
//! is declined for insufficient funds; any other valid, unexpired card is approved. A card
//! number is never stored or logged: an order keeps its last four digits.

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

/// Declined by the stand-in provider: "card declined".
pub const DECLINED_CARD: &str = "4000000000000002";
/// Declined by the stand-in provider: "insufficient funds".
pub const INSUFFICIENT_FUNDS_CARD: &str = "4000000000009995";

/// A card as the client sends it.
#[derive(Clone, Deserialize)]
pub struct Card {
    /// 12 to 19 digits; spaces and dashes between them are ignored.
    pub number: String,
    /// 1 to 12.
    pub exp_month: u32,
    /// Four digits.
    pub exp_year: i32,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("number", &"<redacted>")
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .finish()
    }
}

/// An approved card, as an order keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedCard {
    /// The number's last four digits.
    pub last4: String,
}

/// Why a card was refused. The first three are the client's input (422); a decline is the
/// provider's answer about a well-formed card (402).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// Not 12 to 19 digits.
    #[error("the card number must be 12 to 19 digits")]
    Malformed,
    /// The checksum does not match: a typo.
    #[error("the card number is not valid (its check digit does not match)")]
    Checksum,
    /// Past its expiry month, or an impossible date.
    #[error("the card has expired or its expiry date is not valid")]
    Expired,
    /// The provider declined it.
    #[error("the card was declined: {reason}")]
    Declined {
        /// The provider's reason.
        reason: &'static str,
    },
}

/// Checks `card` as of `today` (a card is valid through the end of its expiry month).
pub fn check_card(card: &Card, today: NaiveDate) -> Result<ApprovedCard, CardError> {
    let digits: String = card
        .number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CardError::Malformed);
    }
    if !luhn3::valid(digits.as_bytes()) {
        return Err(CardError::Checksum);
    }
    let expiry =
        NaiveDate::from_ymd_opt(card.exp_year, card.exp_month, 1).ok_or(CardError::Expired)?;
    if (expiry.year(), expiry.month()) < (today.year(), today.month()) {
        return Err(CardError::Expired);
    }
    match digits.as_str() {
        DECLINED_CARD => Err(CardError::Declined {
            reason: "card declined",
        }),
        INSUFFICIENT_FUNDS_CARD => Err(CardError::Declined {
            reason: "insufficient funds",
        }),
        _ => Ok(ApprovedCard {
            last4: digits[digits.len() - 4..].to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str, exp_month: u32, exp_year: i32) -> Card {
        Card {
            number: number.to_owned(),
            exp_month,
            exp_year,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default()
    }

    #[test]
    fn a_valid_unexpired_card_is_approved_and_keeps_only_its_last_four_digits() {
        for number in [
            "4242424242424242",
            "4242 4242 4242 4242",
            "5555-5555-5555-4444",
        ] {
            let approved = check_card(&card(number, 11, 2026), today());
            assert_eq!(
                approved.map(|a| a.last4.len()),
                Ok(4),
                "{number} through this month"
            );
        }
    }

    #[test]
    fn malformed_numbers_typos_and_expired_cards_are_the_clients_input_errors() {
        let cases = [
            (card("4242", 1, 2030), CardError::Malformed),
            (card("4242x24242424242", 1, 2030), CardError::Malformed),
            (card("42424242424242424242", 1, 2030), CardError::Malformed),
            (card("4242424242424241", 1, 2030), CardError::Checksum),
            (card("4242424242424242", 10, 2026), CardError::Expired),
            (card("4242424242424242", 13, 2030), CardError::Expired),
        ];
        for (card, expected) in cases {
            assert_eq!(check_card(&card, today()), Err(expected), "{card:?}");
        }
    }

    #[test]
    fn the_test_decline_numbers_are_declined_with_their_reason() {
        assert_eq!(
            check_card(&card(DECLINED_CARD, 1, 2030), today()),
            Err(CardError::Declined {
                reason: "card declined"
            })
        );
        assert_eq!(
            check_card(&card(INSUFFICIENT_FUNDS_CARD, 1, 2030), today()),
            Err(CardError::Declined {
                reason: "insufficient funds"
            })
        );
    }

    #[test]
    fn a_cards_debug_output_hides_its_number() {
        let shown = format!("{:?}", card("4242424242424242", 1, 2030));
        assert!(!shown.contains("4242"), "{shown}");
    }
}
