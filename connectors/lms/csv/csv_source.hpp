#pragma once
// The `csv` LMS source: reads report exports (CSV or JSON Lines) that a learning system drops
// into a directory on a schedule, and hands normalised records to a RecordSink.
//
// Contract (see docs/connectors.md, section "csv"):
//  - makeSource() validates the options and reads the time zone file; no other I/O.
//  - fetch() lists `directory` for files matching `pattern`, in name order. Each file is a unit
//    keyed by the SHA-256 of its content: a file the sink already processed is skipped, so a
//    file is read once however often fetch() runs, and a changed file is read again.
//  - Every record gets a stable external id (the record_id column, or a hash of identity, item,
//    completion time and attempt), so re-exported rows upsert the same fact.
//  - Bad rows are quarantined with file:line and a reason; the rest of the file still counts.
//    A missing column, bytes that are not UTF-8, a truncated file or an export with fewer than
//    min_rows rows make the unit (and the fetch) incomplete. An empty directory is incomplete
//    too: an absent export must never look like "nobody is certified".
//  - Never throws; memory is O(one row).
// A source object is not thread-safe; the engine runs one fetch per source at a time.

#include <memory>
#include <string>

#include "connectors/lms/csv/csv_parser.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/lms_source.hpp"

namespace certgate::connectors::csv {

// The declared configuration of kind "csv".
const ports::ConfigSpec& spec();

// Validates `options` (types, allowed values, the time zone exists, the date format parses).
// Errors are Invalid, name the key, carry the option's `where` and a hint. Relative
// `directory` values resolve against `base_dir`. Reads only the time zone file.
core::Result<std::unique_ptr<ports::LmsSource>> makeSource(const std::string& name,
                                                           const ports::Options& options,
                                                           const std::string& base_dir);

}  // namespace certgate::connectors::csv
