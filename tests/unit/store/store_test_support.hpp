#pragma once
// Helpers for the store tests: a temporary directory, a raw SQLite connection to inspect or
// damage a database file behind the store's back, and small row builders.

#include <sqlite3.h>
#include <stdlib.h>  // mkdtemp

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "store/store.hpp"

namespace certgate::store::testing {

inline core::Instant at(std::int64_t unix_seconds) {
  return core::Instant{core::Seconds{unix_seconds}};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "certgate-store-test-XXXXXX").string();
    const char* made = mkdtemp(pattern.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::unique_ptr<Store> openOk(const std::string& path, const OpenOptions& options = {}) {
  auto opened = Store::open(path, options);
  if (!opened) FAIL("open failed: " << opened.error().describe());
  return std::move(opened).value();
}

template <typename T>
T valueOf(Result<T> result) {
  if (!result) FAIL("store call failed: " << result.error().describe());
  return std::move(result).value();
}

inline void requireOk(const Status& status) {
  if (!status) FAIL("store call failed: " << status.error().describe());
}

// A raw connection to a database file, for looking at what the store wrote.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3* raw = nullptr;
    const int rc =
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    db_.reset(raw);
    REQUIRE(rc == SQLITE_OK);
    sqlite3_busy_timeout(raw, 5000);
  }
  // Returns the SQLite result code (SQLITE_OK on success).
  int exec(const std::string& sql) {
    return sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
  }
  std::string text(const std::string& sql) {
    Row row(db_.get(), sql);
    const auto* value = sqlite3_column_text(row.stmt, 0);
    return value == nullptr ? std::string("<null>") : reinterpret_cast<const char*>(value);
  }
  std::int64_t integer(const std::string& sql) {
    Row row(db_.get(), sql);
    return sqlite3_column_int64(row.stmt, 0);
  }
  // Column `col` of every row, joined with " | ".
  std::string joined(const std::string& sql, int col) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      if (!out.empty()) out += " | ";
      const auto* value = sqlite3_column_text(stmt, col);
      if (value != nullptr) out += reinterpret_cast<const char*>(value);
    }
    sqlite3_finalize(stmt);
    return out;
  }
  bool isNull(const std::string& sql) {
    Row row(db_.get(), sql);
    return sqlite3_column_type(row.stmt, 0) == SQLITE_NULL;
  }
  sqlite3* get() const { return db_.get(); }

 private:
  struct Row {
    Row(sqlite3* db, const std::string& sql) {
      REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
      REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    }
    ~Row() { sqlite3_finalize(stmt); }
    sqlite3_stmt* stmt = nullptr;
  };
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  std::unique_ptr<sqlite3, Closer> db_;
};

inline FactRow makeFact(std::int64_t source_id, const std::string& external_id,
                        std::int64_t person_id, std::int64_t when, double score = 80) {
  FactRow f;
  f.source_id = source_id;
  f.external_id = external_id;
  f.person_id = person_id;
  f.item = "quiz-ai-basics";
  f.lms_item = "COURSE-42/quiz";
  f.kind = core::FactKind::QuizAttempt;
  f.status = core::FactStatus::Passed;
  f.lms_pass = 1;
  f.attempt = 1;
  f.score = score;
  f.max_score = 100;
  f.at = at(when);
  f.location = "export.csv:2";
  return f;
}

inline PersonRow makePerson(const std::string& key, const std::string& employee_id,
                            const std::string& email, std::int64_t when = 1'700'000'000) {
  PersonRow p;
  p.key = key;
  p.employee_id = employee_id;
  p.email = email;
  p.display_name = "Person " + key;
  p.population = "engineering";
  p.first_seen = at(when);
  p.updated_at = at(when);
  return p;
}

}  // namespace certgate::store::testing
