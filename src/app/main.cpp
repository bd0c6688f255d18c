// The composition root: the only translation unit that sees every module.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "cli/cli.hpp"
#include "ports/clock.hpp"

int main(int argc, char** argv) {
  // libcurl runs with CURLOPT_NOSIGNAL: a peer closing a connection must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  // Logs go to stderr (journald adds the metadata); stdout is for the command's output.
  auto logger = spdlog::stderr_color_mt("certgate");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  certgate::ports::SystemClock clock;
  return certgate::cli::run(argc, argv, std::cout, std::cerr, clock);
}
