#pragma once
// The status page the box serves at GET / (control/ui/status_page.html): one self-contained
// HTML document (inline CSS and JS, no external assets) that polls GET /v1/vips relative to
// its own URL. The bytes are compiled into the binary at build time (embed.cmake), so the
// page always matches the binary that serves it.
//
// Thread-safe: returns a view of static storage that lives for the whole process.

#include <string_view>

namespace ng::ui {

[[nodiscard]] std::string_view statusPageHtml() noexcept;

}  // namespace ng::ui
