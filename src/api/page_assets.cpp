// The status page's stylesheet and script, served by the daemon itself (GET /static/page.css,
// /static/page.js): no build step, nothing fetched from elsewhere. The page works without the
// script (a plain form, a slower meta refresh); with it, typing in the filter and the periodic
// refresh replace the page's <main> in place, and each update is announced with the
// "nicsync:updated" event (the browser test waits for it).
#include "nicsync/api/status_page.hpp"

namespace nicsync::api {
namespace {

constexpr std::string_view kCss = R"css(:root{color-scheme:light dark;--bg:#fafafa;--fg:#1b1b1b;--mut:#666;--line:#ddd;
--ok:#17803d;--bad:#b3261e;--warn:#9a6700;--card:#fff;--head:#f0f0f0}
@media (prefers-color-scheme:dark){:root{--bg:#151515;--fg:#e8e8e8;--mut:#a0a0a0;--line:#333;--ok:#5cc27a;
--bad:#ff7b72;--warn:#e3b341;--card:#1e1e1e;--head:#242424}}
*{box-sizing:border-box}
body{margin:0;padding:0 1rem 2rem;font:15px/1.45 "DejaVu Sans",system-ui,sans-serif;background:var(--bg);color:var(--fg)}
a{color:inherit}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.6rem;padding:.8rem 0;border-bottom:1px solid var(--line)}
header h1{margin:0;font-size:1.3rem}header h1 a{text-decoration:none}
.ver,.sub{color:var(--mut);font-size:.85em}.sub{display:block}
.badge{padding:.1rem .5rem;border-radius:1rem;font-weight:600;font-size:.85rem}
.badge.ok{background:var(--ok);color:#fff}.badge.bad{background:var(--bad);color:#fff}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
form#filter{display:flex;flex-wrap:wrap;gap:.6rem 1rem;align-items:end;margin:1rem 0}
form#filter label{display:flex;flex-direction:column;font-size:.8rem;color:var(--mut)}
input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid var(--line);border-radius:.3rem;
background:var(--card);color:var(--fg)}
input#q{width:12rem;text-transform:uppercase;font-family:"DejaVu Sans Mono",monospace}
button{cursor:pointer}
h2{font-size:1.1rem;margin:1.4rem 0 .6rem}h3{font-size:1rem;margin:1rem 0 .4rem}
.cards{display:flex;flex-wrap:wrap;gap:.5rem}
.card{display:block;min-width:7.5rem;padding:.5rem .8rem;border:1px solid var(--line);border-left-width:5px;
border-radius:.4rem;background:var(--card);text-decoration:none}
.card .n{display:block;font-size:1.5rem;font-weight:700}.card.zero{opacity:.6}
.st-in_sync.card{border-left-color:var(--ok)}.st-rejected.card,.st-parked.card{border-left-color:var(--bad)}
.st-retrying.card,.st-source_deleted.card,.st-pending.card{border-left-color:var(--warn)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:1rem 0}
dl.facts dt{color:var(--mut)}dl.facts dd{margin:0}
ul.reasons,ul.warnings{margin:.2rem 0;padding-left:1.2rem}ul.warnings li{color:var(--warn)}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:.4rem;background:var(--card)}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:.4rem .6rem;text-align:left;vertical-align:top;border-bottom:1px solid var(--line)}
th{background:var(--head);font-weight:600;white-space:nowrap}th a{text-decoration:none}th[aria-sort] a::after{content:" \25BE"}
tr:last-child td{border-bottom:0}
.gstin,.mono,.code{font-family:"DejaVu Sans Mono",monospace}
.state{font-weight:600;white-space:nowrap}
tr.st-in_sync .state{color:var(--ok)}tr.st-rejected .state,tr.st-parked .state{color:var(--bad)}
tr.st-retrying .state,tr.st-pending .state,tr.st-source_deleted .state{color:var(--warn)}
tr.st-rejected,tr.st-parked{background:color-mix(in srgb,var(--bad) 7%,transparent)}
td.err{min-width:16rem;max-width:36rem}
td.err .msg,td.err .hint,td.err .action,td .action{display:block}
td .hint{color:var(--mut)}td .action{font-weight:600}
code{font-family:"DejaVu Sans Mono",monospace;font-size:.9em;background:var(--head);padding:0 .2rem;border-radius:.2rem}
.code{font-size:.85em;background:var(--head);padding:0 .25rem;border-radius:.2rem}
.breaker.bad{font-weight:700}
.empty{text-align:center;color:var(--mut);padding:1rem}
nav.pager{display:flex;gap:1rem;align-items:center;justify-content:center;margin:.8rem 0}
nav.crumbs{margin:.8rem 0}
footer{margin-top:2rem;color:var(--mut);font-size:.8rem}
@media (max-width:640px){body{padding:0 .5rem 1rem;font-size:14px}.card{min-width:6rem;padding:.4rem .6rem}
.card .n{font-size:1.2rem}dl.facts{grid-template-columns:1fr}dl.facts dt{margin-top:.4rem}
input#q{width:100%}form#filter label{flex:1 1 8rem}
table#pairs thead{display:none}
table#pairs,table#pairs tbody,table#pairs tr,table#pairs td{display:block;width:100%}
table#pairs tr{border-bottom:1px solid var(--line);padding:.3rem 0}
table#pairs td{border:0;padding:.1rem .6rem;max-width:none;min-width:0}
table#pairs td[data-label]::before{content:attr(data-label);display:block;color:var(--mut);font-size:.75rem}}
)css";

constexpr std::string_view kJs = R"js('use strict';
(function () {
  var live = document.getElementById('live');
  if (!live) return;
  var form = document.getElementById('filter');
  var every = (Number(live.getAttribute('data-refresh')) || 10) * 1000;
  var generation = 0;
  var busy = false;
  var typing = null;

  function filterUrl() {
    var params = new URLSearchParams();
    var q = form.elements.q.value.replace(/[^0-9A-Za-z]/g, '').toUpperCase().slice(0, 15);
    if (q) params.set('q', q);
    if (form.elements.state.value) params.set('state', form.elements.state.value);
    if (form.elements.sort.value !== 'problems') params.set('sort', form.elements.sort.value);
    var s = params.toString();
    return '/' + (s ? '?' + s : '');
  }

  function swap(id, doc) {
    var mine = document.getElementById(id);
    var theirs = doc.getElementById(id);
    if (mine && theirs) mine.replaceWith(document.adoptNode(theirs));
  }

  function update(url, remember) {
    var mine = ++generation;
    busy = true;
    fetch(url, {credentials: 'same-origin', headers: {'Accept': 'text/html'}})
      .then(function (r) {
        if (!r.ok) throw new Error('the daemon answered ' + r.status);
        return r.text();
      })
      .then(function (text) {
        if (mine !== generation) return;  // a newer request replaced this one
        var doc = new DOMParser().parseFromString(text, 'text/html');
        if (!doc.getElementById('live')) return;
        swap('readiness', doc);
        live = document.adoptNode(doc.getElementById('live'));
        document.getElementById('live').replaceWith(live);
        if (remember) history.replaceState(null, '', url);
        document.documentElement.removeAttribute('data-stale');
        document.documentElement.setAttribute('data-updated', String(mine));
        document.dispatchEvent(new CustomEvent('nicsync:updated', {detail: {url: url}}));
      })
      .catch(function (e) {
        document.documentElement.setAttribute('data-stale', String(e && e.message || e));
      })
      .finally(function () {
        if (mine === generation) busy = false;
      });
  }

  setInterval(function () {
    if (!busy && document.visibilityState === 'visible') update(location.pathname + location.search, false);
  }, every);
  if (form) {
    form.addEventListener('input', function () {
      clearTimeout(typing);
      typing = setTimeout(function () { update(filterUrl(), true); }, 200);
    });
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      clearTimeout(typing);
      update(filterUrl(), true);
    });
  }
})();
)js";

}  // namespace

std::string_view page_css() noexcept { return kCss; }
std::string_view page_js() noexcept { return kJs; }

}  // namespace nicsync::api
