# Writes a C++ source that defines ng::ui::statusPageHtml() over the bytes of a file.
# Run at build time: cmake -DINPUT=page.html -DOUTPUT=page.cc -P embed.cmake
# The bytes go in as character literals, not one string literal, so any content survives
# (quotes, backslashes, `)"` sequences, NUL, non-UTF-8) and no compiler length limit on
# string literals applies.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
# 32 bytes (64 hex digits) per line, then "3c21" -> "'\x3c','\x21',".
string(REGEX REPLACE "(................................................................)" "\\1\n    "
       hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
file(WRITE "${OUTPUT}" "// Generated from ${INPUT} by control/ui/embed.cmake; do not edit.
#include \"control/ui/status_page.h\"

namespace ng::ui {
namespace {

constexpr char kPage[${size} + 1] = {
    ${bytes}'\\0'};

}  // namespace

std::string_view statusPageHtml() noexcept { return {kPage, ${size}}; }

}  // namespace ng::ui
")
