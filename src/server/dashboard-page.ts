/**
 * The live dashboard, served at `GET /` of the admin port: one self-contained page (no build step,
 * no external assets). It asks for the admin token, keeps it in sessionStorage only (gone when the
 * tab closes), and polls `/admin/summary` and `/admin/latency` every second.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>EnSync engine</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; justify-content: space-between; }
  main { padding: 16px 20px; display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
  section { background: #fff; border-radius: 6px; padding: 12px 16px; box-shadow: 0 1px 2px #0002; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: #59627a; margin: 0 0 8px; }
  .big { font-size: 28px; font-weight: 600; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  td, th { text-align: left; padding: 2px 6px; border-bottom: 1px solid #eee; }
  #login { max-width: 360px; margin: 80px auto; background: #fff; padding: 24px; border-radius: 6px; box-shadow: 0 1px 3px #0003; }
  #login input { width: 100%; box-sizing: border-box; padding: 8px; margin: 8px 0; }
  .error { color: #b00020; }
  canvas { width: 100%; height: 260px; }
</style>
</head>
<body>
<div id="login" hidden>
  <h2>EnSync engine</h2>
  <p>Admin token (kept in this browser tab only):</p>
  <form id="login-form"><input id="token" type="password" autocomplete="off" autofocus><button type="submit">Open</button></form>
  <p id="login-error" class="error"></p>
</div>
<div id="app" hidden>
  <header><strong>EnSync engine</strong><span><span id="updated">-</span> <button id="logout">Log out</button></span></header>
  <main>
    <section><h2>Publish rate</h2><div class="big"><span id="publish-rate">-</span> /s</div><div>total <span id="published-total">-</span></div></section>
    <section><h2>Delivery rate</h2><div class="big"><span id="delivery-rate">-</span> /s</div><div>total <span id="delivered-total">-</span></div></section>
    <section><h2>Connections</h2><table><tr><th>active</th><td id="connections-active">-</td></tr><tr><th>idle</th><td id="connections-idle">-</td></tr><tr><th>disconnected</th><td id="connections-disconnected">-</td></tr></table></section>
    <section><h2>Subscription lag</h2><table id="subscriptions"><tr><th>subscription</th><th>lag</th><th>in flight</th><th>paused</th></tr></table></section>
    <section style="grid-column: 1 / -1"><h2>Latency by percentile (microseconds, log scale)</h2><canvas id="latency" width="1200" height="300"></canvas><div id="latency-legend"></div></section>
  </main>
</div>
<script>
(() => {
  const KEY = 'ensync-admin-token';
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => (n === null || n === undefined || Number.isNaN(n) ? '-' : Math.round(n).toLocaleString('en-US'));
  let last = null;
  let timer = null;

  async function get(path) {
    const res = await fetch(path, { headers: { authorization: 'Bearer ' + sessionStorage.getItem(KEY) } });
    if (res.status === 401) throw Object.assign(new Error('the token was refused'), { unauthorized: true });
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
    return res.json();
  }

  function showLogin(message) {
    if (timer) clearInterval(timer);
    timer = null;
    sessionStorage.removeItem(KEY);
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
  }

  async function tick() {
    try {
      const [summary, latency] = await Promise.all([get('/admin/summary'), get('/admin/latency')]);
      if (last) {
        const seconds = (summary.at - last.at) / 1000;
        if (seconds > 0) {
          $('publish-rate').textContent = fmt((summary.published - last.published) / seconds);
          $('delivery-rate').textContent = fmt((summary.delivered - last.delivered) / seconds);
        }
      }
      last = summary;
      $('published-total').textContent = fmt(summary.published);
      $('delivered-total').textContent = fmt(summary.delivered);
      for (const status of ['active', 'idle', 'disconnected']) $('connections-' + status).textContent = fmt(summary.connections[status]);
      const table = $('subscriptions');
      while (table.rows.length > 1) table.deleteRow(1);
      for (const s of summary.subscriptions) {
        const row = table.insertRow();
        for (const value of [s.subscription, fmt(s.lag), fmt(s.inFlight), s.paused ? 'yes' : '']) row.insertCell().textContent = value;
      }
      drawLatency(latency.stages);
      $('updated').textContent = 'updated ' + new Date(summary.at).toLocaleTimeString();
    } catch (error) {
      if (error.unauthorized) showLogin(error.message);
      else $('updated').textContent = String(error.message);
    }
  }

  // An HDR percentile plot: x is 1/(1-p) on a log scale (50%, 90%, 99%, 99.9%, max), y is µs (log).
  function drawLatency(stages) {
    const canvas = $('latency');
    const ctx = canvas.getContext('2d');
    const w = canvas.width, h = canvas.height, pad = 50;
    ctx.clearRect(0, 0, w, h);
    const points = [['p50', 2], ['p90', 10], ['p99', 100], ['p999', 1000], ['max', 10000]];
    const names = Object.keys(stages).filter((name) => stages[name].count > 0);
    const values = names.flatMap((name) => points.map(([k]) => stages[name][k])).filter((v) => v > 0);
    if (values.length === 0) return;
    const lo = Math.log10(Math.max(1, Math.min(...values))), hi = Math.log10(Math.max(...values) * 1.2);
    const x = (f) => pad + ((Math.log10(f) - Math.log10(2)) / (Math.log10(10000) - Math.log10(2))) * (w - 2 * pad);
    const y = (v) => h - pad - ((Math.log10(Math.max(1, v)) - lo) / Math.max(0.1, hi - lo)) * (h - 2 * pad);
    ctx.strokeStyle = '#ccc';
    ctx.fillStyle = '#59627a';
    ctx.font = '12px system-ui';
    for (const [label, f] of points) {
      ctx.beginPath(); ctx.moveTo(x(f), pad / 2); ctx.lineTo(x(f), h - pad); ctx.stroke();
      ctx.fillText(label, x(f) - 12, h - pad + 16);
    }
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
      const v = Math.pow(10, e);
      if (y(v) < pad / 2 || y(v) > h - pad) continue;
      ctx.fillText(fmt(v), 4, y(v) + 4);
      ctx.beginPath(); ctx.moveTo(pad, y(v)); ctx.lineTo(w - pad, y(v)); ctx.stroke();
    }
    const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
    const legend = [];
    names.forEach((name, i) => {
      ctx.strokeStyle = colors[i % colors.length];
      ctx.lineWidth = 2;
      ctx.beginPath();
      points.forEach(([k, f], j) => (j ? ctx.lineTo(x(f), y(stages[name][k])) : ctx.moveTo(x(f), y(stages[name][k]))));
      ctx.stroke();
      legend.push('<span style="color:' + colors[i % colors.length] + '">■ ' + name + ' (p99 ' + fmt(stages[name].p99) + ' µs)</span>');
    });
    $('latency-legend').innerHTML = legend.join(' &nbsp; ');
  }

  function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    last = null;
    tick();
    timer = setInterval(tick, 1000);
  }

  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $('token').value.trim());
    start();
  });
  $('logout').addEventListener('click', () => showLogin(''));
  if (sessionStorage.getItem(KEY)) start();
  else showLogin('');
})();
</script>
</body>
</html>
`;
