#pragma once
// Writes a synthetic data set to a directory, in the shape certgate reads in production:
//
//   DIR/certgate.yaml      config: store, tracks, item mapping, roster, one csv source
//   DIR/tracks.yaml        the tracks of synth.hpp in certgate's track schema
//   DIR/items.yaml         LMS item id -> module / quiz
//   DIR/roster.csv         the HR roster (Employee ID, Work Email, Name, Worker Type)
//   DIR/exports/lms-export-NNNN.csv   LMS report exports, at most rows_per_file rows each,
//                          spread evenly over the files:
//                          Employee ID, Email, Item, Completed (ISO 8601), Score, Max, Attempt,
//                          Status
//   DIR/generated.txt      what was generated (people, seed, now, row counts), key: value
//
// Existing lms-export-*.csv files in DIR/exports are removed first. Deterministic for a given
// (people, seed, facts_per_person, now, rows_per_file, order).

#include <cstdint>
#include <map>
#include <string>

#include "synth.hpp"

namespace certgate::bench {

// Written to generated.txt; bumped whenever the same options would produce different files,
// so that bench_ingest regenerates a data set written by an older generator.
constexpr int kGeneratorVersion = 2;

struct GenOptions {
  SynthOptions synth;
  std::uint32_t people = 1000;
  std::string out_dir;
  std::int64_t rows_per_file = 1'000'000;
  bool order_by_date = true;  // rows sorted by completion time, like a dated export; else by person
};

struct GenSummary {
  std::int64_t people = 0;
  std::int64_t roster_rows = 0;
  std::int64_t records = 0;       // rows written to the exports
  std::int64_t files = 0;
  std::int64_t off_roster = 0;    // people with records but no roster row
  std::int64_t export_bytes = 0;
  double seconds = 0;
};

// Returns false with `error` set when a file cannot be written.
bool generate(const GenOptions& options, GenSummary& summary, std::string& error);

// Reads DIR/generated.txt (empty map if absent).
std::map<std::string, std::string> readGenerated(const std::string& dir);

}  // namespace certgate::bench
