// The status page in a real browser: the real nicsyncd against the test Vault and the test
// ClearTax (plus a webhook), with pairs in sync, retrying, rejected, parked and source deleted
// and a hostile key name under its mapping set; headless Chromium logs in (HTTP Basic, the API
// token), opens / and a GSTIN's page, types into the filter and reads the DOM that results, does
// the same with JavaScript off, and looks for planted secrets. Screenshots go to
// <build>/browser-screenshots/. Label "browser": scripts/test --browser runs it.
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "devtools.hpp"
#include "testing/world.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;
using testing::Browser;
using testing::Daemon;
using testing::eventually;
using testing::World;
using testing::world_gstin;
namespace json = boost::json;

constexpr std::string_view kApiToken = "trigger-token-5d1c";  // what testing::Daemon writes
const std::string kHostileKey = "<img src=x onerror=alert(1)>";

std::string basic_auth(std::string_view user_pass) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned bits = 0;
  int n = 0;
  for (unsigned char c : user_pass) {
    bits = (bits << 8) | c;
    n += 8;
    while (n >= 6) out += kAlphabet[(bits >> (n -= 6)) & 63];
  }
  if (n > 0) out += kAlphabet[(bits << (6 - n)) & 63];
  while (out.size() % 4 != 0) out += '=';
  return "Basic " + out;
}

std::string screenshot_path(const std::string& name) {
  const char* dir = std::getenv("NICSYNC_BINARY_DIR");
  return (std::filesystem::path(dir != nullptr ? dir : ".") / "browser-screenshots" / name).string();
}

// JSON text of a JS string literal.
std::string js(std::string_view s) { return json::serialize(json::value(s)); }

class StatusPageBrowser : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::find_chromium().empty()) GTEST_FAIL() << "chromium is not installed: run scripts/deps";
    world_.seed_cleartax_secret();
  }

  std::string put(const std::string& gstin, int v) {
    planted_.push_back(fmt::format("Pw<{}>&\"v{}", gstin, v));
    EXPECT_EQ(world_.put_credential(gstin, "API_" + gstin.substr(0, 6), planted_.back()), v);
    return gstin;
  }

  World world_;
  testing::TempDir dir_;
  std::vector<std::string> planted_;
};

TEST_F(StatusPageBrowser, ShowsStatesFiltersAndNoSecret) {
  const auto started = std::chrono::steady_clock::now();
  const std::string in_sync = put(world_gstin(0), 1);
  const std::string retrying = put(world_gstin(1), 1);  // its webhook answers 503
  const std::string rejected = put(world_gstin(2), 1);  // NIC 1019 at ClearTax
  const std::string parked = put(world_gstin(3), 1);    // NIC 1015 at ClearTax
  const std::string deleted = put(world_gstin(4), 1);   // its current version deleted
  world_.call([&] {
    world_.vault().kv_delete_latest("secret", "nic/" + deleted);
    world_.vault().kv_put("secret", "nic/" + kHostileKey, {{"username", "x"}, {"password", "not-a-gstin-secret"}});
    world_.cleartax().add_bad_credentials({.gstin = rejected, .code = "1019"});
    world_.cleartax().add_bad_credentials({.gstin = parked, .code = "1015"});
    world_.cleartax().set_hook_response("/hooks/" + retrying, {.status = 503, .body = "{}"});
  });
  planted_.push_back("not-a-gstin-secret");

  // Slow retries, so that the retrying pair stays retrying while the page is read.
  Daemon d(world_, dir_,
           {.destinations = {"cleartax", "hook"},
            .mapping_set = true,
            .webhook = true,
            .backoff_base = "2s",
            .backoff_cap = "10s"});
  // Reads need the token, so the browser has to log in.
  std::string config = d.config_text();
  const auto api = config.find("[log]\n");
  ASSERT_NE(api, std::string::npos);
  config.insert(api, "require_token = true\n");
  testing::write_file(d.config_path(), config);
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  auto status = [&](const std::string& path) {
    boost::asio::io_context io;
    http::Client client(io.get_executor());
    http::Request r;
    r.url = d.url(path);
    r.headers.push_back({"Authorization", "Bearer " + std::string(kApiToken)});
    r.timeout = 10s;
    auto resp = testing::run_for(io, client.request(std::move(r)), 15s);
    client.shutdown();
    return resp ? resp->body : std::string();
  };
  auto state = [&](const std::string& gstin, const std::string& destination) {
    boost::system::error_code ec;
    const auto now = json::parse(status("/v1/status"), ec);
    if (ec) return std::string("unreadable");
    for (const auto& p : now.at("pairs").as_array()) {
      if (p.at("gstin").as_string() == gstin && p.at("destination").as_string() == destination) {
        return std::string(p.at("state").as_string());
      }
    }
    return std::string("absent");
  };
  ASSERT_TRUE(eventually(
      [&] {
        return state(in_sync, "cleartax") == "in_sync" && state(retrying, "hook") == "retrying" &&
               state(rejected, "cleartax") == "rejected" && state(parked, "cleartax") == "parked" &&
               state(deleted, "cleartax") == "source_deleted";
      },
      30s))
      << status("/v1/status") << "\n"
      << d.process().output();
  const auto daemon_ready = std::chrono::steady_clock::now();

  Browser browser;
  const std::string tab = browser.open_tab(1280, 1000);
  const std::string base = d.url("");

  // Without the token: 401 and nothing else (the browser would show its login prompt).
  {
    boost::asio::io_context io;
    http::Client client(io.get_executor());
    http::Request r;
    r.url = base + "/";
    r.timeout = 10s;
    auto resp = testing::run_for(io, client.request(std::move(r)), 15s);
    client.shutdown();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 401);
    EXPECT_EQ(resp->body, "unauthorized\n");
  }

  // Logged in, as a browser does after its prompt: every request carries Basic.
  browser.call("Network.enable", {}, tab);
  browser.call("Network.setExtraHTTPHeaders",
               {{"headers", json::object{{"Authorization", basic_auth("ops:" + std::string(kApiToken))}}}}, tab);
  browser.navigate(tab, base + "/");
  ASSERT_EQ(browser.eval(tab, "document.querySelectorAll('#pairs').length").as_int64(), 1)
      << browser.eval(tab, "document.body.innerText");

  // The rows' states, as rendered.
  auto row_state = [&](const std::string& gstin, const std::string& destination) {
    return browser.eval(tab, fmt::format("(() => {{ for (const tr of document.querySelectorAll('#pairs tbody tr')) "
                                         "{{ if (tr.dataset.gstin === {} && tr.cells[1].firstChild.textContent === {}) "
                                         "return tr.dataset.state; }} return 'absent'; }})()",
                                         js(gstin), js(destination)));
  };
  EXPECT_EQ(row_state(in_sync, "cleartax").as_string(), "in_sync");
  EXPECT_EQ(row_state(retrying, "hook").as_string(), "retrying");
  EXPECT_EQ(row_state(rejected, "cleartax").as_string(), "rejected");
  EXPECT_EQ(row_state(parked, "cleartax").as_string(), "parked");
  EXPECT_EQ(row_state(deleted, "cleartax").as_string(), "source_deleted");
  // Problems first: the first row is the rejected pair.
  EXPECT_EQ(browser.eval(tab, "document.querySelector('#pairs tbody tr').dataset.state").as_string(), "rejected");
  // The counts match the daemon's.
  const auto counts = json::parse(status("/v1/status")).at("counts").as_object();
  for (const auto& [name, n] : counts) {
    EXPECT_EQ(browser
                  .eval(tab, fmt::format("Number(document.querySelector('.cards [data-state={}]').textContent)",
                                         std::string_view(name)))
                  .as_int64(),
              n.as_int64())
        << name;
  }
  // The rejected pair says what to do.
  EXPECT_NE(browser.eval(tab, "document.querySelector('#pairs tbody tr.st-rejected .action').textContent")
                .as_string()
                .find("e-invoice portal"),
            json::string::npos);
  // The hostile key is shown as text, not as an element, and ran nothing.
  EXPECT_EQ(browser.eval(tab, "document.querySelectorAll('main img, main [onerror]').length").as_int64(), 0);
  EXPECT_NE(
      browser.eval(tab, "document.getElementById('warnings').textContent.indexOf(" + js(kHostileKey) + ")").as_int64(),
      -1);
  browser.screenshot(tab, screenshot_path("status.png"));

  // Typing into the filter updates the table in place; the page announces it.
  browser.eval(tab,
               "window.__filtered = new Promise(resolve => document.addEventListener('nicsync:updated', function h(e) "
               "{ if (e.detail.url.indexOf('q=') >= 0) { document.removeEventListener('nicsync:updated', h); "
               "resolve(e.detail.url); } })); true");
  browser.eval(tab, "document.getElementById('q').focus()");
  const std::string typed = rejected.substr(0, 9);
  browser.call("Input.insertText", {{"text", typed}}, tab);
  const auto url = browser.eval(tab, "window.__filtered", 15s);
  EXPECT_NE(std::string(url.as_string()).find("q=" + typed), std::string::npos);
  const auto shown = browser.eval(tab,
                                  "[...document.querySelectorAll('#pairs tbody tr[data-gstin]')]"
                                  ".map(tr => tr.dataset.gstin)");
  ASSERT_FALSE(shown.as_array().empty());
  for (const auto& g : shown.as_array()) EXPECT_NE(std::string(g.as_string()).find(typed), std::string::npos) << g;
  EXPECT_EQ(browser.eval(tab, "location.search").as_string(), "?q=" + typed) << "the address keeps the filter";
  browser.screenshot(tab, screenshot_path("filtered.png"));

  // A GSTIN's page: its pairs and history.
  browser.navigate(tab, base + "/gstin/" + rejected);
  EXPECT_EQ(browser.eval(tab, "document.getElementById('gstin').textContent").as_string(), rejected);
  EXPECT_GE(browser.eval(tab, "document.querySelectorAll('#history tbody tr.oc-rejected').length").as_int64(), 1);
  const auto gstin_html = browser.eval(tab, "document.documentElement.outerHTML");
  browser.screenshot(tab, screenshot_path("gstin.png"));

  // With JavaScript off the form still filters (a plain GET).
  const std::string plain = browser.open_tab(390, 844);  // a phone
  browser.call("Network.enable", {}, plain);
  browser.call("Network.setExtraHTTPHeaders",
               {{"headers", json::object{{"Authorization", basic_auth("ops:" + std::string(kApiToken))}}}}, plain);
  browser.call("Emulation.setScriptExecutionDisabled", {{"value", true}}, plain);
  browser.navigate(plain, base + "/?state=parked");
  browser.screenshot(plain, screenshot_path("phone-no-script.png"));
  browser.call("Emulation.setScriptExecutionDisabled", {{"value", false}}, plain);
  EXPECT_EQ(browser
                .eval(plain,
                      "[...document.querySelectorAll('#pairs tbody tr[data-gstin]')]"
                      ".map(tr => tr.dataset.gstin + ' ' + tr.dataset.state).join()")
                .as_string(),
            parked + " parked");

  // No secret anywhere the browser saw.
  browser.navigate(tab, base + "/");
  std::vector<std::string> pages = {std::string(browser.eval(tab, "document.documentElement.outerHTML").as_string()),
                                    std::string(gstin_html.as_string()),
                                    std::string(browser.eval(plain, "document.documentElement.outerHTML").as_string())};
  for (const auto& html : pages) {
    for (const auto& s : planted_) EXPECT_EQ(html.find(s), std::string::npos) << s.substr(0, 4) << "...";
    EXPECT_EQ(html.find(world_.options().cleartax_client_secret), std::string::npos);
    EXPECT_EQ(html.find(kApiToken), std::string::npos);
  }
  const auto done = std::chrono::steady_clock::now();
  std::cout << fmt::format("browser test: daemon settled in {} ms, browser part took {} ms\n",
                           std::chrono::duration_cast<std::chrono::milliseconds>(daemon_ready - started).count(),
                           std::chrono::duration_cast<std::chrono::milliseconds>(done - daemon_ready).count());
}

}  // namespace
}  // namespace nicsync
