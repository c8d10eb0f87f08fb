import { useEffect, useState } from 'react';
import { api, messageOf, plural } from '../api.js';
import { ErrorMessage, Loading } from '../components.js';

interface Usage {
  days: { day: string; tokens: number; failed_authentications?: number }[];
}

const W = 720;
const H = 180;
const PAD = { top: 12, right: 8, bottom: 28, left: 40 };

/** Tokens issued per day as a bar chart, with the numbers in a table for screen readers. */
export function UsageChart({ orgId, appId, clientId }: { orgId: number; appId: number; clientId?: string }) {
  const [usage, setUsage] = useState<Usage>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const path = clientId ? `/orgs/${orgId}/apps/${appId}/credentials/${clientId}/usage` : `/orgs/${orgId}/apps/${appId}/usage`;
    setUsage(undefined);
    api<Usage>('GET', path).then(setUsage, (err) => setError(messageOf(err)));
  }, [orgId, appId, clientId]);
  if (error) return <ErrorMessage message={error} />;
  if (!usage) return <Loading />;
  const total = usage.days.reduce((n, d) => n + d.tokens, 0);
  const failed = usage.days.reduce((n, d) => n + (d.failed_authentications ?? 0), 0);
  const who = clientId ? 'this key' : 'this app';
  const max = Math.max(1, ...usage.days.map((d) => d.tokens));
  // A round top of the axis whose half is a whole number too.
  const step = 10 ** Math.floor(Math.log10(max));
  const nice = max <= 4 ? 4 : Math.ceil(max / step / 2) * 2 * step;
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const barW = innerW / usage.days.length;
  const label = (day: string) => new Date(`${day}T00:00:00Z`).toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
  return (
    <figure className="chart card">
      <figcaption>
        {total === 0 ? `No tokens were issued for ${who} in the last 30 days.` : `${plural(total, 'token')} issued in the last 30 days.`}
        {clientId ? ` ${plural(failed, 'failed authentication')} (wrong secret or deactivated key).` : ''}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Bar chart of tokens issued per day; ${total} in total`}>
        {[0, 0.5, 1].map((f) => {
          const y = PAD.top + innerH * (1 - f);
          return (
            <g key={f}>
              <line x1={PAD.left} x2={W - PAD.right} y1={y} y2={y} className="grid" />
              <text x={PAD.left - 6} y={y + 4} textAnchor="end" className="axis">
                {Math.round(nice * f).toLocaleString()}
              </text>
            </g>
          );
        })}
        {usage.days.map((d, i) => {
          const h = (d.tokens / nice) * innerH;
          return (
            <rect key={d.day} x={PAD.left + i * barW + 1} y={PAD.top + innerH - h} width={Math.max(1, barW - 2)} height={h} className="bar">
              <title>{`${label(d.day)}: ${d.tokens} tokens`}</title>
            </rect>
          );
        })}
        {[0, 10, 20, 29].map((i) => (
          <text key={i} x={PAD.left + i * barW + barW / 2} y={H - 8} textAnchor="middle" className="axis">
            {label(usage.days[i]!.day)}
          </text>
        ))}
      </svg>
      <div className="visually-hidden">
        <table>
          <caption>Tokens issued per day</caption>
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col">Tokens</th>
              {clientId && <th scope="col">Failed authentications</th>}
            </tr>
          </thead>
          <tbody>
            {usage.days.map((d) => (
              <tr key={d.day}>
                <td>{d.day}</td>
                <td>{d.tokens}</td>
                {clientId && <td>{d.failed_authentications ?? 0}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </figure>
  );
}
