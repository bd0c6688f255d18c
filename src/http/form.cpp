#include "http/form.hpp"

namespace certgate::http {
namespace {
int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

core::Result<std::string> formDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      const int hi = i + 1 < text.size() ? hexValue(text[i + 1]) : -1;
      const int lo = i + 2 < text.size() ? hexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return core::makeError(core::ErrorKind::Invalid, "bad percent escape in form data");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

core::Result<std::vector<std::pair<std::string, std::string>>> parseForm(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('&', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view field = text.substr(start, end - start);
    if (!field.empty()) {
      const std::size_t eq = field.find('=');
      auto key = formDecode(field.substr(0, eq));
      if (!key) return key.error();
      auto value = formDecode(eq == std::string_view::npos ? std::string_view{} : field.substr(eq + 1));
      if (!value) return value.error();
      fields.emplace_back(std::move(*key), std::move(*value));
    }
    start = end + 1;
  }
  return fields;
}

}  // namespace certgate::http
