// Writes the status page embedded in ng_ui to standard output (for status_page_test.sh).
#include <cstdio>

#include "control/ui/status_page.h"

int main() {
  const std::string_view page = ng::ui::statusPageHtml();
  return std::fwrite(page.data(), 1, page.size(), stdout) == page.size() ? 0 : 1;
}
