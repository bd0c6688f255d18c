#pragma once
// Reminders before expiry and the expiring-soon digest (docs/operations.md "Reminders").
//
// collectReminders evaluates everybody as of `now` and puts into the alert outbox, in one
// transaction:
//  - for each person and track whose certification is inside a reminder window (the track's
//    remindBeforeDays), one personal reminder for the NARROWEST window reached: with windows
//    [30, 7, 1] and 5 days left, the 7-day reminder. A window passed while certgate was not
//    running is not sent late; each window is sent once per certification cycle.
//  - when grace begins (expired, access kept for graceDays), one more reminder, copied to
//    reminders.escalate_to.
//  - on the digest day (reminders.digest.every, UTC), one "expiring.digest" alert listing who
//    expires within reminders.digest.horizon_days and who is in grace, routed like every other
//    alert (alerts.routes).
// Every alert's id is derived from what it is about ("reminder-<person>-<track>-<expiry>-7d",
// "expiring-digest-2026-11-30") and the outbox is unique on (sink, id): running this twice, or
// on every run of the day, adds nothing the second time.
//
// Personal reminders go to the person's email address through the email sink reminders.sink;
// people without an address are counted and named in the digest. Pure store work: nothing is
// sent here (the alert dispatcher delivers the outbox).

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace certgate::engine {

struct ReminderResult {
  std::int64_t due = 0;          // personal reminders due now (sent before or not)
  std::int64_t enqueued = 0;     // new outbox rows for personal reminders
  std::int64_t no_address = 0;   // due, but the person has no email address
  std::int64_t digest_rows = 0;  // new outbox rows for the digest (one per routed sink)
  std::string digest_id;         // the digest of this period ("" when none is due)
  std::int64_t expiring = 0;     // in the digest: expiring within the horizon
  std::int64_t in_grace = 0;     // in the digest: in grace
};

// The first day (UTC midnight) of the digest period that contains `now`: today for "daily",
// the latest such weekday for a weekday name; nullopt for "off".
std::optional<core::Instant> digestDay(const std::string& every, core::Instant now);

core::Result<ReminderResult> collectReminders(store::Store& store,
                                              const settings::Settings& settings,
                                              core::Instant now);

}  // namespace certgate::engine
