import { useEffect, useRef } from 'preact/hooks'
import uPlot, { type AlignedData, type Options } from 'uplot'
import { type Api, dataOf, type History } from './api.js'
import { usePoll } from './poll.js'
import { Stale } from './stale.js'

type Point = History['points'][number]

interface ChartSpec {
  readonly title: string
  readonly series: ReadonlyArray<{
    readonly label: string
    readonly color: string
    readonly value: (p: Point) => number | null
  }>
}

const CHARTS: readonly ChartSpec[] = [
  {
    title: 'Requests per minute',
    series: [
      { label: 'requests', color: '#2563eb', value: (p) => p.requests },
      { label: 'errors', color: '#dc2626', value: (p) => p.errors },
    ],
  },
  {
    title: 'Latency (ms)',
    series: [
      { label: 'p50', color: '#16a34a', value: (p) => p.latency_ms.p50 },
      { label: 'p95', color: '#ca8a04', value: (p) => p.latency_ms.p95 },
      { label: 'p99', color: '#dc2626', value: (p) => p.latency_ms.p99 },
    ],
  },
  {
    title: 'Requests held (queued, running, loading)',
    series: [{ label: 'requests held', color: '#7c3aed', value: (p) => p.max_active_requests }],
  },
  {
    title: 'Resident memory (MiB)',
    series: [
      {
        label: 'memory',
        color: '#0891b2',
        value: (p) => (p.resident_bytes === null ? null : p.resident_bytes / 2 ** 20),
      },
    ],
  },
]

/** The model's last hour on this server, per minute, refreshed every 10 s. */
export function ModelCharts(props: { api: Api; namespace: string; modelId: string }) {
  const { api, namespace, modelId } = props
  const history = usePoll(
    async () =>
      dataOf(
        api.client.GET('/v1/namespaces/{namespace_id}/models/{model_id}/history', {
          params: { path: { namespace_id: namespace, model_id: modelId } },
        }),
      ),
    10_000,
    `${namespace}/${modelId}`,
  )
  const points = history.value?.points
  const requests = points?.reduce((sum, p) => sum + p.requests, 0) ?? 0
  return (
    <div class="charts" data-requests={requests}>
      <h4>Last hour</h4>
      <Stale error={history.error} />
      <div class="chart-grid">
        {CHARTS.map((spec) => (
          <Chart key={spec.title} spec={spec} points={points} />
        ))}
      </div>
    </div>
  )
}

function Chart({ spec, points }: { spec: ChartSpec; points: readonly Point[] | undefined }) {
  const holder = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | undefined>(undefined)
  const data = (): AlignedData => {
    const shown = points ?? []
    return [
      shown.map((p) => Date.parse(p.time) / 1000),
      ...spec.series.map((s) => shown.map(s.value)),
    ]
  }
  useEffect(() => {
    if (holder.current === null) return
    const options: Options = {
      title: spec.title,
      width: 360,
      height: 160,
      legend: { show: true },
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      // Points too: a model busy for one minute is one point, which a line alone would not show.
      series: [
        {},
        ...spec.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          points: { show: true, size: 5 },
        })),
      ],
    }
    plot.current = new uPlot(options, data(), holder.current)
    return () => {
      plot.current?.destroy()
      plot.current = undefined
    }
  }, [])
  useEffect(() => {
    plot.current?.setData(data())
  }, [points])
  return (
    <div class="chart" data-chart={spec.title} data-points={points?.length ?? 0} ref={holder} />
  )
}
