/** A grouped bar chart as plain SVG (server-rendered: no script needed): before and after per run. */

export interface BarGroup {
  label: string;
  before: number;
  after: number;
}

const COLORS = { before: "#9aa5b1", after: "#2c7be5" };
const WIDTH = 360;
const HEIGHT = 200;
const PAD = { left: 44, right: 8, top: 20, bottom: 36 };

function ticks(max: number): number[] {
  const step = max / 4;
  return [0, 1, 2, 3, 4].map((i) => i * step);
}

function short(value: number): string {
  return Math.abs(value) >= 100
    ? value.toFixed(0)
    : Math.abs(value) >= 10
    ? value.toFixed(1)
    : value.toFixed(2);
}

export function BeforeAfterBars(
  { title, groups, digits }: { title: string; groups: BarGroup[]; digits: number },
) {
  const largest = Math.max(0, ...groups.flatMap((g) => [g.before, g.after]));
  // All zeros (an untrained tiny model scores 0) still gets a readable 0-1 axis.
  const max = largest > 0 ? largest * 1.1 : 1;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const groupW = plotW / Math.max(1, groups.length);
  const barW = Math.min(28, groupW / 3);
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  return (
    <figure class="chart" data-bars={title}>
      <figcaption>{title}</figcaption>
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        width={WIDTH}
        height={HEIGHT}
        role="img"
        aria-label={`${title}: before and after`}
      >
        {ticks(max).map((t) => (
          <g key={t}>
            <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(t)} y2={y(t)} stroke="#dde1e6" />
            <text x={PAD.left - 4} y={y(t) + 4} text-anchor="end" font-size="10" fill="#6b7480">
              {short(t)}
            </text>
          </g>
        ))}
        {groups.map((g, i) => {
          const x = PAD.left + i * groupW + groupW / 2;
          return (
            <g key={g.label}>
              <rect
                x={x - barW - 1}
                y={y(g.before)}
                width={barW}
                height={y(0) - y(g.before)}
                fill={COLORS.before}
              >
                <title>{`${g.label} before: ${g.before.toFixed(digits)}`}</title>
              </rect>
              <rect x={x + 1} y={y(g.after)} width={barW} height={y(0) - y(g.after)} fill={COLORS.after}>
                <title>{`${g.label} after: ${g.after.toFixed(digits)}`}</title>
              </rect>
              <text x={x} y={HEIGHT - PAD.bottom + 14} text-anchor="middle" font-size="10">{g.label}</text>
            </g>
          );
        })}
        <rect x={PAD.left} y={4} width={10} height={10} fill={COLORS.before} />
        <text x={PAD.left + 14} y={13} font-size="10">before</text>
        <rect x={PAD.left + 64} y={4} width={10} height={10} fill={COLORS.after} />
        <text x={PAD.left + 78} y={13} font-size="10">after</text>
      </svg>
    </figure>
  );
}
