#include "control/ui/status_page.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace ng::ui {
namespace {

std::string readSource() {
  std::ifstream in(NG_STATUS_PAGE_SOURCE, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

TEST(StatusPage, EmbeddedBytesEqualTheHtmlSource) {
  const std::string source = readSource();
  ASSERT_FALSE(source.empty()) << "cannot read " << NG_STATUS_PAGE_SOURCE;
  EXPECT_EQ(statusPageHtml().size(), source.size());
  EXPECT_EQ(statusPageHtml(), source);
}

TEST(StatusPage, IsSelfContainedAndPollsTheRelativeApi) {
  const std::string_view page = statusPageHtml();
  EXPECT_TRUE(page.starts_with("<!DOCTYPE html>"));
  EXPECT_NE(page.find("fetch(\"v1/vips\""), std::string_view::npos);
  // No external assets: nothing loaded from another origin or another file.
  for (const char* needle : {"<script src", "<link", "@import", "http://", "https://", "url("}) {
    EXPECT_EQ(page.find(needle), std::string_view::npos) << needle;
  }
}

}  // namespace
}  // namespace ng::ui
