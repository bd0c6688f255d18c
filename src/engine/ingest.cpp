#include "engine/ingest.hpp"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/evaluate.hpp"
#include "core/identity.hpp"

namespace certgate::engine {

using core::Error;
using core::ErrorKind;
using core::makeError;

bool IngestReport::complete() const {
  for (const auto& s : sources)
    if (!s.complete) return false;
  return true;
}

namespace {

std::string personKey(const std::string& employee_id, const std::string& email) {
  return !employee_id.empty() ? employee_id : email;
}

// Population precedence: the identity mapping file, then the roster/record attribute, then the
// configured default.
std::string populationFor(const settings::IdentitySettings& id, const std::string& employee_id,
                          const std::string& email, const std::string& attribute) {
  if (!employee_id.empty())
    if (auto it = id.populations.find(employee_id); it != id.populations.end()) return it->second;
  if (!email.empty())
    if (auto it = id.populations.find(email); it != id.populations.end()) return it->second;
  if (!attribute.empty()) return attribute;
  return id.default_population;
}

std::string ratioText(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", r);
  return buf;
}

std::string truncated(std::string s, std::size_t n = 300) {
  if (s.size() > n) {
    s.resize(n);
    s += "...";
  }
  return s;
}

// Writes one source's records into the store as they stream in.
//
// Two threads. The source's thread (the caller of fetch) reads, resolves and gathers batches. A
// writer thread owns the store and the unit's transaction and runs the store work in the order it
// was handed over: begin a unit, write a batch, record and commit the unit. So the source reads
// the next batch, and the next unit, while the writer writes and commits the previous one. The
// store is only ever used by one thread at a time: the source's thread touches it only while
// the writer is idle (wait()) or through query().
class StoreSink final : public ports::RecordSink {
 public:
  StoreSink(store::Store& store, const settings::Settings& settings, std::int64_t source_id,
            const std::string& source_name, std::int64_t run_id, core::Instant now,
            core::IdentityResolver& resolver, bool roster_authoritative, SourceReport& report)
      : store_(store),
        settings_(settings),
        policy_(*settings.policy),
        source_id_(source_id),
        source_name_(source_name),
        run_id_(run_id),
        now_(now),
        resolver_(resolver),
        roster_authoritative_(roster_authoritative),
        report_(report) {
    for (const auto& t : policy_.policy.tracks) {
      if (t.quiz) quiz_items_.insert(std::string(policy_.symbols.name(t.quiz->item)));
      for (auto m : t.modules) module_items_.insert(std::string(policy_.symbols.name(m)));
    }
    for (const auto& m : settings.items) {
      if (!m.source.empty() && m.source != source_name) continue;
      // A source-specific mapping wins over a global one.
      auto [it, inserted] = item_map_.emplace(m.lms_item, m.item);
      if (!inserted && !m.source.empty()) it->second = m.item;
    }
    writer_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "cg-fact-writer");  // top -H, perf
      writerLoop();
    });
    // The source's facts are written as a bulk load (store.hpp beginFactLoad).
    // Not a failure when it cannot begin (a transaction of the caller's is open): the facts are
    // then written batch by batch, as outside a load.
    submit(false, [this]() -> core::Status {
      static_cast<void>(store_.beginFactLoad(source_id_));
      return {};
    });
  }

  ~StoreSink() override {
    stopWriter();
    tx_.reset();  // rolls back a unit left open
    static_cast<void>(store_.endFactLoad());
  }
  StoreSink(const StoreSink&) = delete;
  StoreSink& operator=(const StoreSink&) = delete;

  // Only units recorded complete count as processed: an incomplete one (truncated, empty,
  // collapsed) is read again on every fetch, and keeps the source incomplete, until it is
  // replaced or removed. Re-reading is harmless: facts upsert, quarantine entries deduplicate.
  // A key not begun in this run has the answer it had when the run started: the units recorded
  // complete are read once, at the first question, so that the source never waits for the
  // writer's unit work. A key begun in this run waits for that unit's commit.
  bool alreadyProcessed(const ports::UnitInfo& unit) override {
    if (begun_keys_.count(unit.key) > 0) {
      wait();
      bool processed = true;
      query([&]() -> core::Status {
        auto done = store_.unitProcessed(source_id_, unit.key);
        if (!done.ok()) return done.error();
        processed = *done;
        return {};
      });
      return processed || failed();
    }
    if (!processed_at_start_) {
      processed_at_start_.emplace();
      query([&]() -> core::Status {
        auto keys = store_.processedUnits(source_id_);
        if (!keys.ok()) return keys.error();
        processed_at_start_->insert(std::make_move_iterator(keys->begin()),
                                    std::make_move_iterator(keys->end()));
        return {};
      });
    }
    return processed_at_start_->count(unit.key) > 0 || failed();
  }

  void beginUnit(const ports::UnitInfo& unit) override {
    unit_records_ = 0;
    pending_.clear();
    pending_quarantine_.clear();
    begun_keys_.insert(unit.key);
    submit(false, [this]() -> core::Status {
      auto tx = store_.begin();
      if (!tx.ok()) return tx.error();
      tx_.emplace(std::move(tx).value());
      return {};
    });
  }

  void record(ports::SourceRecord&& r) override {
    if (failed()) return;
    ++unit_records_;
    const std::int64_t person_id = resolvePerson(r);
    if (person_id == 0) return;

    // The record is ours: its strings move into the row (f's copies serve the rest).
    store::FactRow f;
    f.source_id = source_id_;
    f.external_id = std::move(r.external_id);
    f.person_id = person_id;
    const ItemInfo& info = itemInfo(r.lms_item);
    f.lms_item = std::move(r.lms_item);
    f.item = info.item;
    const bool is_quiz = info.quiz;
    if (!is_quiz && !info.module) ++report_.unmapped_items;
    f.kind = is_quiz ? core::FactKind::QuizAttempt : core::FactKind::Completion;
    f.status = r.status;
    f.lms_pass = r.lms_pass;
    f.attempt = r.attempt;
    f.score = r.score;
    f.max_score = r.max_score;
    f.at = r.at;
    if (trust_lms_expiry_) f.lms_expiry = r.lms_expiry;
    f.location = std::move(r.location);

    core::Fact probe;
    probe.item = 0;  // any symbol: the item itself is not what is checked here
    probe.kind = f.kind;
    probe.score = f.score;
    probe.max_score = f.max_score;
    probe.at = f.at;
    const std::string why = core::impossibleFactReason(probe, now_, settings_.limits.clock_skew);
    if (!why.empty()) {
      quarantineRecord(f.external_id, f.location, "impossible value: " + why +
                                                      "; correct the record in the LMS export",
                       f.lms_item);
      return;
    }
    pending_.push_back(std::move(f));
    if (pending_.size() >= batch_facts_) flush();
  }

  void quarantine(ports::QuarantinedRecord&& q) override {
    if (failed()) return;
    ++unit_records_;
    quarantineRecord(q.external_id, q.location, q.reason, q.raw);
  }

  void endUnit(const ports::UnitInfo& unit, bool complete, const std::string& problem) override {
    flush();
    submit(false, [this, unit, complete, problem, records = unit_records_]() -> core::Status {
      return finishUnit(unit, complete, problem, records);
    });
  }

  void setOptions(bool trust_lms_expiry, double min_record_ratio, std::size_t batch_facts) {
    trust_lms_expiry_ = trust_lms_expiry;
    min_record_ratio_ = min_record_ratio;
    batch_facts_ = batch_facts;
  }

  // Waits for the writer and stops it: call when the source's fetch returned, before reading
  // error().
  void finish() {
    wait();
    stopWriter();
    tx_.reset();  // a unit the source did not end, or that failed, is rolled back
    if (auto ended = store_.endFactLoad(); !ended.ok()) fail(ended.error());
    report_.inserted += written_.facts.inserted;
    report_.updated += written_.facts.updated;
    report_.unchanged += written_.facts.unchanged;
    report_.quarantined += written_.quarantined;
    report_.writer_cpu_seconds += writer_cpu_seconds_;
    written_ = {};
    writer_cpu_seconds_ = 0;
  }

  const Error& error() const { return error_; }
  const std::vector<std::string>& incomplete() const { return incomplete_; }

 private:
  void fail(const Error& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_.message.empty()) error_ = e;
    failed_ = true;
  }
  bool failed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return failed_;
  }

  // --- the writer thread

  struct Task {
    std::function<core::Status()> run;
    bool batch = false;
    bool* done = nullptr;  // query(): set when it ran
  };

  void submit(bool batch, std::function<core::Status()> run) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (failed_) return;
      queue_.push_back({std::move(run), batch, nullptr});
      if (batch) ++batches_;
    }
    wake_.notify_all();
  }

  // Runs `run` on the writer before its queued tasks (after the one it is running) and waits.
  void query(std::function<core::Status()> run) {
    bool done = false;
    std::unique_lock<std::mutex> lock(mutex_);
    if (failed_) return;
    queue_.push_front({std::move(run), false, &done});
    wake_.notify_all();
    idle_.wait(lock, [&] { return done; });  // the writer sets it, run or skipped
  }

  // Waits until the writer has run everything handed to it.
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [&] { return (queue_.empty() && !busy_) || stopped_; });
  }

  void stopWriter() {
    if (!writer_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    writer_.join();
  }

  void writerLoop() {
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) break;
        task = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
      }
      core::Status st;
      if (!failed()) st = task.run();
      if (!st.ok()) fail(st.error());
      if (failed()) tx_.reset();  // rolls the unit back: nothing of it is kept
      {
        std::lock_guard<std::mutex> lock(mutex_);
        busy_ = false;
        if (task.batch) --batches_;
        if (task.done != nullptr) *task.done = true;
      }
      idle_.notify_all();
    }
    timespec cpu{};
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
      writer_cpu_seconds_ = static_cast<double>(cpu.tv_sec) + static_cast<double>(cpu.tv_nsec) * 1e-9;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopped_ = true;
    }
    idle_.notify_all();
  }

  // Hands the facts and quarantine rows gathered so far to the writer as one batch (the store
  // merges a batch in key order), once the batch before it is written: while the writer writes
  // one batch, the source reads and resolves the next.
  void flush() {
    if (pending_.empty() && pending_quarantine_.empty()) return;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      idle_.wait(lock, [&] { return batches_ == 0 || failed_ || stopped_; });
    }
    submit(true, [this, facts = std::move(pending_),
                  quarantined = std::move(pending_quarantine_)]() -> core::Status {
      return writeBatch(facts, quarantined);
    });
    pending_ = {};
    pending_quarantine_ = {};
    pending_.reserve(std::min<std::size_t>(batch_facts_, 65'536));
  }

  // Writer thread: store and tx_ only, and what only the writer writes until wait() returns.
  core::Status writeBatch(const std::vector<store::FactRow>& facts,
                          const std::vector<store::QuarantineRow>& quarantined) {
    for (const store::QuarantineRow& q : quarantined) {
      if (auto st = store_.addQuarantine(q); !st.ok()) return st.error();
      ++written_.quarantined;
    }
    auto up = store_.upsertFacts(facts, now_);
    if (!up.ok()) return up.error();
    written_.facts.inserted += up->inserted;
    written_.facts.updated += up->updated;
    written_.facts.unchanged += up->unchanged;
    return {};
  }

  // Writer thread: the unit's ledger entry, in its transaction, then the commit.
  core::Status finishUnit(const ports::UnitInfo& unit, bool complete, const std::string& problem,
                          std::int64_t records) {
    std::string why = problem;
    bool ok = complete;
    if (ok && min_record_ratio_ > 0 && !unit.incremental) {
      auto prev = store_.lastCompleteUnitRecords(source_id_);
      if (!prev.ok()) return prev.error();
      if (*prev > 0 &&
          static_cast<double>(records) < min_record_ratio_ * static_cast<double>(*prev)) {
        ok = false;
        why = "record count collapsed: " + std::to_string(records) +
              " records, the previous complete export had " + std::to_string(*prev) +
              " (min_record_ratio " + ratioText(min_record_ratio_) +
              "; if the drop is real, lower min_record_ratio for this source)";
      }
    }
    auto st = store_.recordUnit(source_id_, unit.key, unit.name, unit.bytes, ok, why, now_, records);
    if (!st.ok()) return st.error();
    if (tx_) {
      auto c = tx_->commit();
      tx_.reset();
      if (!c.ok()) return c.error();
    }
    if (!ok) noteIncomplete(unit.name + ": " + why);
    return {};
  }

  void noteIncomplete(std::string what) { incomplete_.push_back(std::move(what)); }

  void quarantineRecord(const std::string& external_id, const std::string& location,
                        const std::string& reason, const std::string& raw) {
    store::QuarantineRow q;
    q.source_id = source_id_;
    q.external_id = external_id;
    q.location = location;
    q.reason = reason;
    q.raw = truncated(raw);
    q.at = now_;
    q.run_id = run_id_;
    pending_quarantine_.push_back(std::move(q));
  }

  // What an LMS item maps to, worked out once per distinct item.
  struct ItemInfo {
    std::string item;     // the certgate item (the LMS item itself when unmapped)
    bool quiz = false;    // a track's quiz
    bool module = false;  // a track's module
  };
  const ItemInfo& itemInfo(const std::string& lms_item) {
    auto it = item_info_.find(lms_item);
    if (it != item_info_.end()) return it->second;
    ItemInfo info;
    auto mapped = item_map_.find(lms_item);
    info.item = mapped != item_map_.end() ? mapped->second : lms_item;
    info.quiz = quiz_items_.count(info.item) > 0;
    info.module = module_items_.count(info.item) > 0;
    return item_info_.emplace(lms_item, std::move(info)).first->second;
  }

  // Returns the person id, or 0 after quarantining the record.
  std::int64_t resolvePerson(const ports::SourceRecord& r) {
    const core::Resolution res =
        resolver_.resolve(source_name_, r.employee_id, r.email, r.source_user);
    if (res.outcome == core::Resolution::Outcome::Matched) {
      // A record may carry the population attribute: keep the person's population current.
      if (!r.population.empty() || !r.display_name.empty()) {
        if (auto it = seen_.find(res.person_id); it == seen_.end()) {
          seen_.insert(res.person_id);
          if (!roster_authoritative_) {
            store::PersonRow p;
            auto existing = keys_.find(res.person_id);
            if (existing != keys_.end()) {
              const std::string employee_id = core::normaliseEmployeeId(r.employee_id);
              const std::string email = core::normaliseEmail(r.email);
              p.key = existing->second;
              p.display_name = r.display_name;
              p.population = populationFor(settings_.identity, employee_id, email, r.population);
              p.updated_at = now_;
              wait();
              if (auto up = store_.upsertPerson(p); !up.ok()) fail(up.error());
            }
          }
        }
      }
      return res.person_id;
    }
    const std::string employee_id = core::normaliseEmployeeId(r.employee_id);
    const std::string email = core::normaliseEmail(r.email);
    if (res.outcome == core::Resolution::Outcome::Unmatched && !roster_authoritative_ &&
        (!employee_id.empty() || !email.empty())) {
      store::PersonRow p;
      p.key = personKey(employee_id, email);
      p.employee_id = employee_id;
      p.email = email;
      p.display_name = r.display_name;
      p.population = populationFor(settings_.identity, employee_id, email, r.population);
      p.first_seen = now_;
      p.updated_at = now_;
      wait();
      auto id = store_.upsertPerson(p);
      if (!id.ok()) {
        fail(id.error());
        return 0;
      }
      resolver_.add({*id, employee_id, email});
      keys_[*id] = p.key;
      seen_.insert(*id);
      ++report_.people_created;
      return *id;
    }
    const char* what =
        res.outcome == core::Resolution::Outcome::Ambiguous ? "ambiguous identity" : "unmatched identity";
    std::string hint = res.outcome == core::Resolution::Outcome::Ambiguous
                           ? "fix the duplicate in the LMS or roster, or add an override in mappings/identity.yaml"
                           : "add the person to the roster, or map the LMS user with an override in "
                             "mappings/identity.yaml";
    quarantineRecord(r.external_id, r.location, std::string(what) + ": " + res.reason + "; " + hint,
                     "employee_id=" + r.employee_id + " email=" + r.email + " user=" + r.source_user +
                         " item=" + r.lms_item);
    return 0;
  }

 public:
  std::unordered_map<std::int64_t, std::string> keys_;  // person id -> key (for updates)

 private:
  store::Store& store_;
  const settings::Settings& settings_;
  const settings::LoadedPolicy& policy_;
  std::int64_t source_id_;
  std::string source_name_;
  std::int64_t run_id_;
  core::Instant now_;
  core::IdentityResolver& resolver_;
  bool roster_authoritative_;
  SourceReport& report_;
  bool trust_lms_expiry_ = false;
  double min_record_ratio_ = 0;
  std::unordered_set<std::string> quiz_items_, module_items_;
  std::unordered_map<std::string, std::string> item_map_;
  std::unordered_map<std::string, ItemInfo> item_info_;
  std::unordered_set<std::int64_t> seen_;
  // alreadyProcessed: the keys of the units recorded complete when the run began.
  std::optional<std::unordered_set<std::string>> processed_at_start_;
  // Facts of the open unit not yet handed to the writer. A batch is merged into the store's key
  // and person order in one sorted pass, so larger batches write faster; the cap bounds the
  // memory (about 330 bytes a fact; one batch gathers while one is written).
  std::size_t batch_facts_ = Ingestor::kDefaultBatchFacts;
  std::vector<store::FactRow> pending_;
  std::vector<store::QuarantineRow> pending_quarantine_;
  std::unordered_set<std::string> begun_keys_;  // units begun by this sink
  // The writer's: the open unit's transaction and what it wrote.
  std::optional<store::Transaction> tx_;
  struct Written {
    store::UpsertCounts facts;
    std::int64_t quarantined = 0;
  } written_;
  double writer_cpu_seconds_ = 0;
  // Shared by both threads, under mutex_.
  std::mutex mutex_;
  std::condition_variable wake_;  // the writer has work or must stop
  std::condition_variable idle_;  // the writer finished a task or stopped
  std::deque<Task> queue_;
  int batches_ = 0;  // batches queued or being written
  bool busy_ = false;
  bool stop_ = false;
  bool stopped_ = false;
  bool failed_ = false;
  std::int64_t unit_records_ = 0;
  Error error_;                           // under mutex_
  std::vector<std::string> incomplete_;  // the writer's until finish()
  // Last: started once everything above exists, joined before any of it goes.
  std::thread writer_;
};

}  // namespace

core::Result<std::int64_t> Ingestor::loadRoster(const std::vector<RosterEntry>& roster) {
  const core::Instant now = clock_.now();
  auto tx = store_.begin();
  if (!tx.ok()) return tx.error();
  // Identifier -> the roster entry that had it first. A flat index, not a node-based map: a
  // million people would leave millions of small blocks to free, which the allocator then
  // consolidates on a later allocation (0.7 s of the ingest that followed at 1M people).
  core::IdentityIndex seen;
  seen.reserve(2 * roster.size(), 40 * roster.size());
  std::int64_t loaded = 0;
  for (std::size_t index = 0; index < roster.size(); ++index) {
    const RosterEntry& e = roster[index];
    const std::string employee_id = core::normaliseEmployeeId(e.employee_id);
    const std::string email = core::normaliseEmail(e.email);
    auto reject = [&](const std::string& reason) -> core::Status {
      store::QuarantineRow q;
      q.location = e.location;
      q.reason = reason;
      q.raw = "employee_id=" + e.employee_id + " email=" + e.email;
      q.at = now;
      return store_.addQuarantine(q);
    };
    if (employee_id.empty() && email.empty()) {
      if (auto st = reject("roster entry has neither an employee id nor a valid email; fix the roster");
          !st.ok())
        return st.error();
      continue;
    }
    bool duplicate = false;
    for (const std::string* id : {&employee_id, &email}) {
      if (id->empty()) continue;
      std::int64_t first = -1;
      seen.forEach(*id, [&](std::int64_t at) {
        if (first < 0) first = at;
      });
      if (first < 0) {
        seen.add(*id, static_cast<std::int64_t>(index));
        continue;
      }
      if (auto st = reject("duplicate roster identifier '" + *id + "' (also at " +
                           roster[static_cast<std::size_t>(first)].location +
                           "); each person must appear once");
          !st.ok())
        return st.error();
      duplicate = true;
    }
    if (duplicate) continue;
    store::PersonRow p;
    p.key = personKey(employee_id, email);
    p.employee_id = employee_id;
    p.email = email;
    p.display_name = e.display_name;
    p.population = populationFor(settings_.identity, employee_id, email, e.population);
    p.first_seen = now;
    p.updated_at = now;
    auto id = store_.upsertPerson(p);
    if (!id.ok()) {
      // Two identifiers that belong to two different people: set aside, never merged.
      if (id.error().kind != core::ErrorKind::Conflict) return id.error();
      if (auto st = reject(id.error().message + "; fix the roster or the directory"); !st.ok())
        return st.error();
      continue;
    }
    ++loaded;
  }
  if (auto st = tx->commit(); !st.ok()) return st.error();
  roster_loaded_ = true;
  return loaded;
}

core::Result<IngestReport> Ingestor::run(std::vector<SourceHandle>& sources) {
  const core::Instant started = clock_.now();
  IngestReport report;
  auto run_id = store_.beginRun("ingest", started);
  if (!run_id.ok()) return run_id.error();
  report.run_id = *run_id;

  // Everyone known so far; sources add people unless a roster is authoritative.
  const bool roster_authoritative = !settings_.identity.roster_path.empty();
  core::IdentityResolver resolver(settings_.identity.keys, settings_.identity.overrides);
  // Person keys serve updates of people the sources create or describe: none when the roster
  // is authoritative.
  std::unordered_map<std::int64_t, std::string> keys;
  {
    std::int64_t count = 0;
    bool sized = false;
    auto read = store_.forEachPersonIdentity(
        [&](std::int64_t id, std::string_view key, std::string_view employee_id,
            std::string_view email) {
          if (!sized) {  // the count comes first
            resolver.reserve(static_cast<std::size_t>(count));
            if (!roster_authoritative) keys.reserve(static_cast<std::size_t>(count));
            sized = true;
          }
          resolver.add(id, employee_id, email);
          if (!roster_authoritative) keys.emplace(id, key);
        },
        &count);
    if (!read.ok()) return read.error();
  }

  for (SourceHandle& h : sources) {
    const settings::SourceSettings& cfg = *h.settings;
    SourceReport sr;
    sr.source = cfg.name;
    sr.kind = cfg.kind;
    if (!cfg.enabled) continue;
    auto source_id = store_.ensureSource(cfg.name, cfg.kind);
    if (!source_id.ok()) return source_id.error();
    std::string cursor;
    if (auto all = store_.sources(); all.ok())
      for (const auto& s : *all)
        if (s.id == *source_id) cursor = s.cursor;

    const core::Instant now = clock_.now();
    StoreSink sink(store_, settings_, *source_id, cfg.name, report.run_id, now, resolver,
                   roster_authoritative, sr);
    sink.keys_ = std::move(keys);  // handed back below
    sink.setOptions(cfg.trust_lms_expiry, cfg.min_record_ratio, batch_facts_);
    auto outcome = h.source->fetch(cursor, now, sink);
    sink.finish();

    store::FetchRow fetch;
    fetch.source_id = *source_id;
    fetch.run_id = report.run_id;
    fetch.started_at = now;
    fetch.finished_at = clock_.now();
    if (!sink.error().message.empty()) {
      // The store failed under us: this is the whole run's failure, not the source's.
      (void)store_.finishRun(report.run_id, "failed", "{}", clock_.now());
      return sink.error();
    }
    if (!outcome.ok()) {
      sr.fetched = false;
      sr.complete = false;
      sr.problem = outcome.error().describe();
    } else {
      sr.fetched = true;
      sr.units_seen = outcome->units_seen;
      sr.units_skipped = outcome->units_skipped;
      sr.complete = outcome->complete && sink.incomplete().empty();
      std::string problem = outcome->problem;
      for (const auto& p : sink.incomplete()) {
        if (problem.find(p) != std::string::npos) continue;
        if (!problem.empty()) problem += "; ";
        problem += p;
      }
      sr.problem = sr.complete ? "" : problem;
      if (!outcome->next_cursor.empty() && outcome->next_cursor != cursor)
        if (auto st = store_.setCursor(*source_id, outcome->next_cursor); !st.ok()) return st.error();
    }
    if (outcome.ok() && outcome->full_records >= 0) {
      fetch.full_records = outcome->full_records;
      // The collapse guard of sources whose units are all incremental: what they read whole
      // at every fetch, against the last complete fetch's.
      if (sr.complete && cfg.min_record_ratio > 0) {
        auto prev = store_.lastCompleteFullRecords(*source_id);
        if (!prev.ok()) return prev.error();
        if (*prev > 0 && static_cast<double>(outcome->full_records) <
                             cfg.min_record_ratio * static_cast<double>(*prev)) {
          sr.complete = false;
          sr.problem = "record count collapsed: " + std::to_string(outcome->full_records) +
                       " records read, the previous complete fetch read " +
                       std::to_string(*prev) + " (min_record_ratio " +
                       ratioText(cfg.min_record_ratio) +
                       "; if the drop is real, lower min_record_ratio for this source)";
        }
      }
    }
    fetch.complete = sr.complete;
    fetch.problem = sr.problem;
    fetch.units_seen = sr.units_seen;
    fetch.units_skipped = sr.units_skipped;
    fetch.records = sr.inserted + sr.updated + sr.unchanged;
    fetch.quarantined = sr.quarantined;
    if (auto id = store_.recordFetch(fetch); !id.ok()) return id.error();
    keys = std::move(sink.keys_);
    report.sources.push_back(std::move(sr));
  }

  std::string summary = "{\"sources\":" + std::to_string(report.sources.size()) +
                        ",\"complete\":" + (report.complete() ? "true" : "false") + "}";
  if (auto st = store_.finishRun(report.run_id, report.complete() ? "ok" : "partial", summary,
                                 clock_.now());
      !st.ok())
    return st.error();
  store::AuditRow a;
  a.at = clock_.now();
  a.actor = "certgate";
  a.action = "ingest";
  a.subject = "sources";
  a.details_json = summary;
  a.run_id = report.run_id;
  if (auto st = store_.appendAudit(a); !st.ok()) return st.error();
  return report;
}

}  // namespace certgate::engine
