"use strict";

const SILENCE_RMS = 0.004;
const METER_INTERVAL_MS = 20;
const ICE_GATHER_TIMEOUT_MS = 2000;
const LOG_LIMIT = 20;
const EVENTS_LIMIT = 500;
const TOAST_MS = 6000;
const METER_BAR_PX = 3;
const METER_GAP_PX = 2;

const demo = {
  state: "new",
  lastTtfaMs: null,
  serverTtfaMs: null,
  peakLevel: 0,
  events: [],
};
window.demo = demo;

const $ = (id) => document.getElementById(id);
const ui = {
  state: $("state"),
  voice: $("voice"),
  voiceMeta: $("voice-meta"),
  connect: $("connect"),
  hangup: $("hangup"),
  text: $("text"),
  streamMode: $("stream-mode"),
  composeHint: $("compose-hint"),
  speak: $("speak"),
  flush: $("flush"),
  interrupt: $("interrupt"),
  meter: $("meter"),
  ttfa: $("ttfa"),
  serverTtfa: $("server-ttfa"),
  audioMs: $("audio-ms"),
  playedMs: $("played-ms"),
  log: $("log"),
  clearLog: $("clear-log"),
  audio: $("remote-audio"),
  toast: $("toast"),
};

let voices = [];
let pc = null;
let channel = null;
let sessionId = null;
let audioCtx = null;
let analyser = null;
let source = null;
let samples = null;
let meterTimer = null;
let levels = [];
let ttfaStart = null;
let silenceSeen = false;
let streamedText = "";
let utteranceOpen = false;
let toastTimer = null;
let connectAttempt = 0;

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(url, options = {}) {
  const res = await fetch(url, options);
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    throw new HttpError(res.status, body?.error?.message ?? `${res.status} ${res.statusText}`);
  }
  return body;
}

function postJson(url, payload) {
  return request(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
}

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function formatMs(value) {
  return typeof value === "number" ? `${Math.round(value)} ms` : "—";
}

function truncate(text, max = 160) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/* ---------- UI ---------- */

function describe(message) {
  const fields = Object.entries(message)
    .filter(([key]) => key !== "type")
    .map(([key, value]) => `${key}=${key === "id" ? String(value).slice(0, 8) : value}`);
  return [message.type, ...fields].join("  ");
}

function log(direction, text, isError = false) {
  const item = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString([], { hour12: false });
  const arrow = document.createElement("span");
  arrow.className = `dir-${direction}`;
  arrow.textContent = { in: "←", out: "→", info: "•" }[direction];
  const body = document.createElement("span");
  body.textContent = truncate(text);
  if (isError) body.className = "is-error";
  item.append(time, arrow, body);
  ui.log.prepend(item);
  while (ui.log.children.length > LOG_LIMIT) ui.log.lastElementChild.remove();
}

function showError(message) {
  log("info", message, true);
  showToast(message);
}

function showToast(message) {
  ui.toast.textContent = message;
  ui.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(hideToast, TOAST_MS);
}

function hideToast() {
  ui.toast.hidden = true;
}

function channelOpen() {
  return channel?.readyState === "open";
}

function setState(state) {
  demo.state = state;
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  updateControls();
}

function updateControls() {
  const active = pc !== null || demo.state === "connecting";
  const open = channelOpen();
  const streaming = ui.streamMode.checked;
  ui.connect.hidden = active;
  ui.connect.disabled = active;
  ui.hangup.hidden = !active;
  ui.speak.hidden = streaming;
  ui.flush.hidden = !streaming;
  ui.speak.disabled = !open;
  ui.flush.disabled = !open;
  ui.interrupt.disabled = !open;
  ui.composeHint.innerHTML = streaming
    ? "Typing streams straight to the voice. <kbd>Enter</kbd> flushes."
    : "Press <kbd>Ctrl</kbd>/<kbd>⌘</kbd>+<kbd>Enter</kbd> to speak.";
}

function renderStats() {
  ui.ttfa.textContent = formatMs(demo.lastTtfaMs);
  ui.serverTtfa.textContent = formatMs(demo.serverTtfaMs);
}

function renderVoiceMeta() {
  const voice = voices.find((v) => v.id === ui.voice.value);
  ui.voiceMeta.textContent = voice
    ? [voice.backend, voice.languages.join(", "), `${voice.sample_rate / 1000} kHz`]
        .filter(Boolean)
        .join(" · ")
    : "";
}

async function loadVoices() {
  try {
    ({ voices } = await request("/v1/voices"));
    ui.voice.replaceChildren(...voices.map((v) => new Option(v.name, v.id)));
    if (voices.length === 0) ui.voice.replaceChildren(new Option("Server default", ""));
  } catch (err) {
    ui.voice.replaceChildren(new Option("Server default", ""));
    showError(`Could not load voices: ${err.message}`);
  }
  ui.voice.disabled = false;
  renderVoiceMeta();
  updateControls();
}

/* ---------- Audio analysis ---------- */

function ensureAudioContext() {
  if (!audioCtx) {
    audioCtx = new AudioContext();
    analyser = audioCtx.createAnalyser();
    analyser.fftSize = 1024;
    samples = new Float32Array(analyser.fftSize);
    // A muted sink keeps the analyser pulled by the graph; playback itself goes through <audio>.
    const mute = audioCtx.createGain();
    mute.gain.value = 0;
    analyser.connect(mute).connect(audioCtx.destination);
  }
  return audioCtx.resume();
}

function attachStream(stream) {
  // Chrome only feeds remote WebRTC audio into WebAudio while a media element plays the stream.
  ui.audio.srcObject = stream;
  ui.audio.play().catch((err) => log("info", `Audio playback blocked: ${err.message}`, true));
  source?.disconnect();
  source = audioCtx.createMediaStreamSource(stream);
  source.connect(analyser);
  clearInterval(meterTimer);
  meterTimer = setInterval(measure, METER_INTERVAL_MS);
}

function measure() {
  analyser.getFloatTimeDomainData(samples);
  let sum = 0;
  for (const s of samples) sum += s * s;
  const rms = Math.sqrt(sum / samples.length);
  demo.peakLevel = Math.max(demo.peakLevel, rms);
  // Require silence first so the tail of the previous utterance is not taken for this one's onset.
  if (ttfaStart !== null && rms <= SILENCE_RMS) {
    silenceSeen = true;
  } else if (ttfaStart !== null && silenceSeen) {
    demo.lastTtfaMs = Math.round(performance.now() - ttfaStart);
    ttfaStart = null;
    renderStats();
  }
  drawMeter(rms);
}

function startTtfa() {
  ttfaStart = performance.now();
  silenceSeen = false;
  demo.peakLevel = 0;
}

function drawMeter(rms) {
  const canvas = ui.meter;
  const dpr = window.devicePixelRatio || 1;
  const width = Math.round(canvas.clientWidth * dpr);
  const height = Math.round(canvas.clientHeight * dpr);
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const step = (METER_BAR_PX + METER_GAP_PX) * dpr;
  const capacity = Math.ceil(width / step);
  // Map -60..0 dBFS onto 0..1 so quiet speech is still visible.
  const db = 20 * Math.log10(Math.max(rms, 1e-6));
  levels.push(Math.min(1, Math.max(0, (db + 60) / 60)));
  if (levels.length > capacity) levels = levels.slice(-capacity);

  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const gradient = ctx.createLinearGradient(0, height, 0, 0);
  gradient.addColorStop(0, "#6d8cff");
  gradient.addColorStop(1, "#a46dff");
  ctx.fillStyle = gradient;
  const mid = height / 2;
  levels.forEach((level, i) => {
    const x = width - (levels.length - i) * step;
    const half = Math.max(dpr, (level * (height - 8 * dpr)) / 2);
    ctx.fillRect(x, mid - half, METER_BAR_PX * dpr, half * 2);
  });
}

function clearMeter() {
  levels = [];
  const ctx = ui.meter.getContext("2d");
  ctx.clearRect(0, 0, ui.meter.width, ui.meter.height);
}

/* ---------- Data channel ---------- */

function send(message) {
  channel.send(JSON.stringify(message));
}

function onChannelMessage(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    log("in", `unparseable message: ${event.data}`, true);
    return;
  }
  demo.events.push(message);
  if (demo.events.length > EVENTS_LIMIT) demo.events.shift();
  log("in", describe(message), message.type === "error");

  switch (message.type) {
    case "audio_start":
      demo.serverTtfaMs = message.ttfa_ms;
      renderStats();
      break;
    case "done":
      ui.audioMs.textContent = formatMs(message.audio_ms);
      break;
    case "cancelled":
      ui.playedMs.textContent = formatMs(message.played_ms);
      break;
    case "error":
      showToast(`${message.message} (${message.code})`);
      break;
  }
}

function wireChannel(dc) {
  dc.addEventListener("open", () => {
    streamedText = ui.text.value;
    utteranceOpen = false;
    log("info", "data channel open");
    updateControls();
  });
  dc.addEventListener("close", () => {
    if (channel !== dc) return;
    log("info", "session ended by the server");
    teardown("closed");
  });
  dc.addEventListener("message", onChannelMessage);
}

/* ---------- Actions ---------- */

function speak() {
  const text = ui.text.value.trim();
  if (!text || !channelOpen()) return;
  const message = { type: "speak", text, voice: ui.voice.value || undefined, id: newId() };
  send(message);
  startTtfa();
  log("out", `speak ${message.id.slice(0, 8)}: ${text}`);
}

function streamInput() {
  if (!ui.streamMode.checked || !channelOpen()) return;
  const value = ui.text.value;
  // Only text added at the end can be streamed; other edits just move the baseline.
  if (value.startsWith(streamedText) && value.length > streamedText.length) {
    if (!utteranceOpen) startTtfa();
    utteranceOpen = true;
    send({ type: "append", text: value.slice(streamedText.length), voice: ui.voice.value || undefined });
  }
  streamedText = value;
}

function flush() {
  if (!utteranceOpen || !channelOpen()) return;
  send({ type: "flush" });
  log("out", `flush: ${streamedText.trim()}`);
  ui.text.value = "";
  streamedText = "";
  utteranceOpen = false;
}

function interrupt() {
  if (!channelOpen()) return;
  send({ type: "cancel" });
  ttfaStart = null;
  utteranceOpen = false;
  log("out", "cancel");
}

function waitForIceGathering(peer) {
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      peer.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (peer.iceGatheringState === "complete") finish();
    };
    const timer = setTimeout(finish, ICE_GATHER_TIMEOUT_MS);
    peer.addEventListener("icegatheringstatechange", check);
    check();
  });
}

async function connect() {
  hideToast();
  const attempt = ++connectAttempt;
  const audioReady = ensureAudioContext();
  setState("connecting");
  log("info", "connecting…");
  try {
    await audioReady;
    const { iceServers = [] } = await request("/rtc/config");
    if (attempt !== connectAttempt) return;
    const peer = new RTCPeerConnection({ iceServers });
    pc = peer;
    peer.addTransceiver("audio", { direction: "recvonly" });
    channel = peer.createDataChannel("tts", { ordered: true });
    wireChannel(channel);
    peer.addEventListener("track", (e) => attachStream(e.streams[0] ?? new MediaStream([e.track])));
    peer.addEventListener("connectionstatechange", () => {
      if (pc !== peer) return;
      setState(peer.connectionState);
      if (peer.connectionState === "failed") {
        showError("Connection failed. Check network / ICE server settings.");
        teardown("failed");
      }
    });

    await peer.setLocalDescription(await peer.createOffer());
    await waitForIceGathering(peer);
    if (attempt !== connectAttempt) return;
    const answer = await postJson("/rtc/offer", {
      sdp: peer.localDescription.sdp,
      type: "offer",
      voice: ui.voice.value || undefined,
    });
    if (attempt !== connectAttempt) {
      deleteSession(answer.session_id).catch(() => {}); // best effort: nobody waits for this session
      return;
    }
    sessionId = answer.session_id;
    await peer.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
    log("info", `session ${sessionId}`);
  } catch (err) {
    if (attempt !== connectAttempt) return;
    showError(`Could not connect: ${err.message}`);
    teardown("failed");
  }
}

function deleteSession(id, options = {}) {
  return request(`/rtc/sessions/${encodeURIComponent(id)}`, { method: "DELETE", ...options });
}

async function hangup() {
  ui.hangup.disabled = true;
  if (sessionId) {
    try {
      await deleteSession(sessionId);
    } catch (err) {
      if (err.status !== 404) showError(`Hang up: ${err.message}`);
    }
  }
  ui.hangup.disabled = false;
  teardown("closed");
  log("info", "hung up");
}

function teardown(state) {
  const peer = pc;
  connectAttempt += 1;
  pc = null;
  channel = null;
  sessionId = null;
  ttfaStart = null;
  utteranceOpen = false;
  peer?.close();
  clearInterval(meterTimer);
  meterTimer = null;
  source?.disconnect();
  source = null;
  ui.audio.srcObject = null;
  clearMeter();
  setState(state);
}

/* ---------- Wiring ---------- */

ui.connect.addEventListener("click", connect);
ui.hangup.addEventListener("click", hangup);
ui.speak.addEventListener("click", speak);
ui.flush.addEventListener("click", flush);
ui.interrupt.addEventListener("click", interrupt);
ui.voice.addEventListener("change", renderVoiceMeta);
ui.clearLog.addEventListener("click", () => ui.log.replaceChildren());
ui.toast.addEventListener("click", hideToast);

ui.streamMode.addEventListener("change", () => {
  streamedText = ui.text.value;
  utteranceOpen = false;
  updateControls();
  ui.text.focus();
});

ui.text.addEventListener("input", (e) => {
  if (!e.isComposing) streamInput();
});
ui.text.addEventListener("compositionend", streamInput);

ui.text.addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || e.isComposing) return;
  if (ui.streamMode.checked) {
    if (!e.shiftKey) {
      e.preventDefault();
      flush();
    }
  } else if (e.ctrlKey || e.metaKey) {
    e.preventDefault();
    speak();
  }
});

window.addEventListener("pagehide", () => {
  if (sessionId) deleteSession(sessionId, { keepalive: true }).catch(() => {});
});

updateControls();
loadVoices();
