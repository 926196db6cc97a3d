/**
 * The Playground: one prompt, two streams side by side (e.g. a base and the base with its adapter, or the
 * small and the big model), token by token over SSE, with shared sampling controls and tokens/s per side.
 * The server runs generations one at a time, so the right side waits for the left one's GPU turn.
 */
import { useRef, useState } from "preact/hooks";
import { readSse } from "./_sse.ts";

export interface PlaygroundProps {
  models: string[];
  /** Adapters with the model they were trained on (null when unknown). */
  adapters: { id: string; base: string | null }[];
  left: SideChoice;
  right: SideChoice;
}

export interface SideChoice {
  model: string;
  adapter: string | null;
  adapterOn: boolean;
}

interface SideState {
  tokens: string[];
  status: "idle" | "waiting" | "streaming" | "done" | "error";
  error: string | null;
  tokensPerSecond: number | null;
  startedAt: number | null;
  finishReason: string | null;
}

const IDLE: SideState = {
  tokens: [],
  status: "idle",
  error: null,
  tokensPerSecond: null,
  startedAt: null,
  finishReason: null,
};

interface Sampling {
  temperature: number;
  topP: number;
  topK: number;
  maxTokens: number;
  seed: number;
}

function Side(
  { title, choice, setChoice, state, models, adapters, which }: {
    title: string;
    choice: SideChoice;
    setChoice: (c: SideChoice) => void;
    state: SideState;
    models: string[];
    adapters: PlaygroundProps["adapters"];
    which: "left" | "right";
  },
) {
  const elapsed = state.startedAt !== null ? (performance.now() - state.startedAt) / 1000 : 0;
  const live = state.status === "streaming" && elapsed > 0 ? state.tokens.length / elapsed : null;
  const rate = state.tokensPerSecond ?? live;
  return (
    <section class="playground-side" data-side={which}>
      <h2>{title}</h2>
      <dl class="facts">
        <dt>Model</dt>
        <dd>
          <select
            name={`${which}-model`}
            value={choice.model}
            onChange={(e) => setChoice({ ...choice, model: (e.target as HTMLSelectElement).value })}
          >
            {models.map((m) => <option key={m} value={m}>{m}</option>)}
          </select>
        </dd>
        <dt>Adapter</dt>
        <dd>
          <select
            name={`${which}-adapter`}
            value={choice.adapter ?? ""}
            onChange={(e) => {
              const value = (e.target as HTMLSelectElement).value;
              setChoice({ ...choice, adapter: value === "" ? null : value, adapterOn: value !== "" });
            }}
          >
            <option value="">none</option>
            {adapters.map((a) => (
              <option key={a.id} value={a.id}>{a.base ? `${a.id} (on ${a.base})` : a.id}</option>
            ))}
          </select>{" "}
          <label>
            <input
              type="checkbox"
              name={`${which}-adapter-on`}
              checked={choice.adapterOn}
              disabled={choice.adapter === null}
              onChange={(e) => setChoice({ ...choice, adapterOn: (e.target as HTMLInputElement).checked })}
            />{" "}
            adapter on
          </label>
        </dd>
      </dl>
      <p class="muted">
        <span data-field="status">{state.status}</span> ·{" "}
        <span data-field="count">{state.tokens.length}</span> tokens ·{" "}
        <span data-field="rate">{rate === null ? "— tokens/s" : `${rate.toFixed(1)} tokens/s`}</span>
        {state.finishReason && ` · finished: ${state.finishReason}`}
      </p>
      {state.error && <p class="error">{state.error}</p>}
      <pre
        class="log stream-output"
        data-field="output"
        data-tokens={state.tokens.length}
        style={{ whiteSpace: "pre-wrap", minHeight: "4rem" }}
      >
        {state.tokens.map((t, i) => <span key={i} class="tok">{t}</span>)}
      </pre>
    </section>
  );
}

export default function Playground(props: PlaygroundProps) {
  const [prompt, setPrompt] = useState("Почему программисты путают Хэллоуин и Рождество?");
  const [sampling, setSampling] = useState<Sampling>({
    temperature: 0.7,
    topP: 0.95,
    topK: 0,
    maxTokens: 32,
    seed: 0,
  });
  const [left, setLeft] = useState(props.left);
  const [right, setRight] = useState(props.right);
  const [leftState, setLeftState] = useState<SideState>(IDLE);
  const [rightState, setRightState] = useState<SideState>(IDLE);
  const controllers = useRef<AbortController[]>([]);

  const stream = async (choice: SideChoice, setState: (f: (s: SideState) => SideState) => void) => {
    const controller = new AbortController();
    controllers.current.push(controller);
    setState(() => ({ ...IDLE, status: "waiting" }));
    try {
      const response = await fetch("/api/playground/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: choice.model,
          adapter: choice.adapterOn ? choice.adapter : null,
          prompt,
          ...sampling,
        }),
        signal: controller.signal,
      });
      if (!response.ok) throw new Error((await response.json()).error);
      setState((s) => ({ ...s, status: "streaming", startedAt: performance.now() }));
      await readSse(response, (event, data) => {
        const payload = JSON.parse(data);
        if (event === "token") setState((s) => ({ ...s, tokens: [...s.tokens, payload.text] }));
        else if (event === "done") {
          setState((s) => ({
            ...s,
            status: "done",
            tokensPerSecond: payload.tokensPerSecond,
            finishReason: payload.finishReason,
          }));
        } else if (event === "error") setState((s) => ({ ...s, status: "error", error: payload.message }));
      });
    } catch (err) {
      if (controller.signal.aborted) setState((s) => ({ ...s, status: "done", finishReason: "stopped" }));
      else setState((s) => ({ ...s, status: "error", error: (err as Error).message }));
    }
  };

  const run = (event: Event) => {
    event.preventDefault();
    for (const c of controllers.current.splice(0)) c.abort();
    stream(left, setLeftState);
    stream(right, setRightState);
  };
  const stop = () => {
    for (const c of controllers.current.splice(0)) c.abort();
  };
  const busy = [leftState, rightState].some((s) => s.status === "waiting" || s.status === "streaming");
  const number = (key: keyof Sampling, label: string, step: string) => (
    <label style={{ marginRight: "1rem" }}>
      {label}{" "}
      <input
        name={key}
        type="number"
        step={step}
        value={sampling[key]}
        style={{ width: "5rem" }}
        onInput={(e) => setSampling((s) => ({ ...s, [key]: Number((e.target as HTMLInputElement).value) }))}
      />
    </label>
  );

  return (
    <div class="playground">
      <form onSubmit={run}>
        <section>
          <h2>Prompt</h2>
          <textarea
            name="prompt"
            rows={3}
            style={{ width: "100%", font: "inherit" }}
            value={prompt}
            onInput={(e) => setPrompt((e.target as HTMLTextAreaElement).value)}
          />
          <p>
            {number("temperature", "temperature", "0.05")}
            {number("topP", "top-p", "0.05")}
            {number("topK", "top-k", "1")}
            {number("maxTokens", "max tokens", "1")}
            {number("seed", "seed", "1")}
          </p>
          <button type="submit">Generate both</button>{" "}
          {busy && <button type="button" onClick={stop}>Stop</button>}
        </section>
      </form>
      <div class="columns">
        <Side
          title="Left"
          which="left"
          choice={left}
          setChoice={setLeft}
          state={leftState}
          models={props.models}
          adapters={props.adapters}
        />
        <Side
          title="Right"
          which="right"
          choice={right}
          setChoice={setRight}
          state={rightState}
          models={props.models}
          adapters={props.adapters}
        />
      </div>
    </div>
  );
}
