# sidekiq_peer.rb — Sidekiq's enqueuer for tests/bench/peers/run.sh.
#
#   ruby sidekiq_peer.rb enqueue N            push_bulk, 1,000 jobs per call
#   ruby sidekiq_peer.rb lat-enqueue N RATE W N single pushes at RATE/s (W=1: warm-up)
#
# Prints one JSON line; times are CLOCK_MONOTONIC.
require 'json'
require_relative 'sidekiq_jobs'

def now_us
  Process.clock_gettime(Process::CLOCK_MONOTONIC, :microsecond)
end

mode, n, rate, warm = ARGV
n = Integer(n)
case mode
when 'enqueue'
  Sidekiq.redis(&:ping) # connect before the clock starts, as the other enqueuers do
  t0 = now_us
  (0...n).step(1000) do |i|
    Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => (i...[n, i + 1000].min).map { |k| [k] })
  end
  puts JSON.generate(jobs: n, seconds: (now_us - t0) / 1e6)
when 'lat-enqueue'
  rate = Float(rate)
  w = warm == '1' ? 1 : 0
  Sidekiq.redis(&:ping)
  t0 = now_us + 20_000
  late = 0
  n.times do |i|
    due = t0 + i * 1e6 / rate
    wait = due - now_us
    if wait.positive?
      sleep(wait / 1e6)
    elsif wait < -1000
      late += 1
    end
    Sidekiq::Client.push('class' => LatJob, 'args' => [now_us, w])
  end
  puts JSON.generate(sent: n, seconds: (now_us - t0) / 1e6, late: late)
else
  warn "sidekiq_peer.rb: unknown mode #{mode}"
  exit 2
end
