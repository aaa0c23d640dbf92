//! Seeding a tenant with patients whose conversations look like real ones:
//! a phone identifier, an open conversation, a dropped call with two turns,
//! and a pending state key.

use std::io::Write;

use policy::{Channel, Resolution, Strength};

use continuity::identifiers::Identifier;
use server::Error;
use store::ids::SessionId;
use store::{IdentifierKind, SessionRow, TenantStore};

const AREAS: [&str; 10] = ["212", "213", "310", "312", "415", "617", "646", "702", "718", "917"];

/// The `i`-th seeded phone number (valid North American numbers).
pub fn phone(i: u64) -> String {
    let area = AREAS[(i / 7_000_000) as usize % AREAS.len()];
    let exchange = 230 + (i / 10_000) % 700;
    format!("+1{area}{exchange}{:04}", i % 10_000)
}

/// The `i`-th seeded date of birth (`with_dob`), ISO 8601.
pub fn dob(i: u64) -> String {
    let day = jiff::civil::date(1950, 1, 1).checked_add(jiff::Span::new().days((i % 20_000) as i64));
    day.map(|d| d.to_string()).unwrap_or_else(|_| "1950-01-01".into())
}

/// Seeds `count` patients in batches of one transaction each.
pub fn seed(store: &mut TenantStore, count: u64, now: i64, progress: &mut dyn Write) -> Result<(), Error> {
    seed_shaped(store, count, now, false, progress)
}

/// The same, each patient with a date of birth on file too (sealed under
/// the patient's key), so identity confirmation has something to match.
pub fn seed_with_dob(store: &mut TenantStore, count: u64, now: i64, progress: &mut dyn Write) -> Result<(), Error> {
    seed_shaped(store, count, now, true, progress)
}

fn seed_shaped(
    store: &mut TenantStore,
    count: u64,
    now: i64,
    with_dob: bool,
    progress: &mut dyn Write,
) -> Result<(), Error> {
    const BATCH: u64 = 5_000;
    // A big cache while seeding: with 2 MiB every insert is a page miss and a decryption.
    store.set_page_cache_mib(256)?;
    let mut done = 0;
    while done < count {
        let tx = store.transaction()?;
        for i in done..(done + BATCH).min(count) {
            let number = phone(i);
            let id = Identifier::phone(&number, "US").map_err(|_| Error::BenchSeed { index: i })?;
            let customer = tx.create_customer(now)?;
            if with_dob {
                tx.set_customer_fields(&customer, None, Some(&dob(i)), now)?;
            }
            tx.link_identifier(IdentifierKind::Phone, id.value(), &customer, "bench", true, now)?;
            let conversation = tx.create_conversation(&customer, now)?;
            let session = SessionRow {
                conversation_id: Some(conversation.clone()),
                customer_id: Some(customer.clone()),
                status: Resolution::Resolved,
                strength: Strength::Asserted,
                created_customer: true,
                ..SessionRow::starting(SessionId::generate(), Channel::Voice, now - 600_000)
            };
            tx.insert_session(&session, None, "bench")?;
            tx.append_turn(
                &customer,
                &conversation,
                &session.id,
                "voice",
                "patient",
                "I'd like to book a check-up.",
                now - 590_000,
            )?;
            tx.append_turn(
                &customer,
                &conversation,
                &session.id,
                "voice",
                "agent",
                "Which day suits you?",
                now - 580_000,
            )?;
            tx.end_session(&session.id, "dropped", now - 570_000)?;
            tx.put_state(&customer, &conversation, "pending_booking_date", "Tuesday", now, now + 30 * 86_400_000)?;
        }
        tx.commit()?;
        done = (done + BATCH).min(count);
        if done % 100_000 == 0 || done == count {
            let _ = writeln!(progress, "    seeded {done}/{count} patients");
        }
    }
    store.set_page_cache_mib(2)?;
    Ok(())
}
