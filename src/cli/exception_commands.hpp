#pragma once
// `certgate exceptions request|approve|reject|revoke|list|show`: the command line of the
// exceptions workflow (engine/exceptions.hpp does the work and the auditing).

#include <cstdint>
#include <string>
#include <vector>

#include "cli/context.hpp"

namespace certgate::cli::detail {

struct ExceptionRequestArgs {
  std::string person, track, requester, start, end;
  int days = 0;
  std::vector<std::string> fields;  // NAME=VALUE
};

int cmdExceptionRequest(Io& io, const std::string& config, const ExceptionRequestArgs& r,
                        const std::string& format);
int cmdExceptionApprove(Io& io, const std::string& config, std::int64_t id,
                        const std::string& approver, const std::string& role,
                        const std::string& comment, const std::string& format);
int cmdExceptionReject(Io& io, const std::string& config, std::int64_t id, const std::string& by,
                       const std::string& reason, const std::string& format);
int cmdExceptionRevoke(Io& io, const std::string& config, std::int64_t id, const std::string& by,
                       const std::string& reason, const std::string& format);
int cmdExceptionList(Io& io, const std::string& config, const std::string& format);
int cmdExceptionShow(Io& io, const std::string& config, std::int64_t id, const std::string& format);

}  // namespace certgate::cli::detail
