/** Server rendering: the shared layout with its navigation, and island placeholders the browser hydrates. */
import type { ComponentChildren, FunctionComponent } from "preact";
import { renderToString } from "preact-render-to-string";

/** A navigation entry a route module declares; the layout lists them by `order`. */
export interface NavEntry {
  label: string;
  href: string;
  /** Runs 10, New run 20, Playground 30, Compare 40, Models 50, System 60. */
  order: number;
}

/** JSON safe inside a <script> element: `<` is escaped so no `</script>` can end it early. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(
    /\u2029/g,
    "\\u2029",
  );
}

/**
 * Renders an island (a default export of islands/<Name>.tsx) on the server with its props, and marks it for
 * the browser bundle to hydrate with the same props.
 */
export function Island<P extends object>({ of, props }: { of: FunctionComponent<P>; props: P }) {
  const Component = of;
  return (
    <div data-island={of.name}>
      <script type="application/json" dangerouslySetInnerHTML={{ __html: scriptJson(props) }} />
      <div data-island-root="">
        <Component {...props} />
      </div>
    </div>
  );
}

export interface LayoutProps {
  title: string;
  nav: NavEntry[];
  /** The path of the page, to mark its nav entry. */
  current: string;
  islandsUrl: string;
  children: ComponentChildren;
}

function Layout({ title, nav, current, islandsUrl, children }: LayoutProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · Ostrota`}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/static/uplot.min.css" />
        <link rel="stylesheet" href="/static/lab.css" />
        <script type="module" src={islandsUrl} />
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/">Ostrota</a>
          <nav>
            {nav.map((entry) => (
              <a
                href={entry.href}
                aria-current={current === entry.href || current.startsWith(`${entry.href}/`)
                  ? "page"
                  : undefined}
              >
                {entry.label}
              </a>
            ))}
          </nav>
        </header>
        <main>
          <h1>{title}</h1>
          {children}
        </main>
      </body>
    </html>
  );
}

/** The full HTML document of a page. */
export function renderDocument(props: LayoutProps): string {
  return `<!DOCTYPE html>${renderToString(<Layout {...props} />)}`;
}
