# sidekiq_jobs.rb — Sidekiq's jobs for tests/bench/peers/run.sh: loaded by
# `sidekiq -r` (the worker) and by sidekiq_peer.rb (the enqueuer).
# REDIS_URL (unix:///path) picks the Redis; the logger is at WARN, as the
# benchmark's brief says (INFO logs a line per job start and end).
require 'sidekiq'

Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
Sidekiq.configure_server { |c| c.logger.level = Logger::WARN }
Sidekiq.configure_client { |c| c.logger.level = Logger::WARN }

# A no-op: what the drain measures is the queue, not the job.
class NoopJob
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(_i); end
end

# Writes "w|m ENQUEUED_US STARTED_US" (CLOCK_MONOTONIC) to $BENCH_STAMPS.
class LatJob
  include Sidekiq::Worker
  sidekiq_options retry: false
  STAMPS = ENV['BENCH_STAMPS'] && File.open(ENV['BENCH_STAMPS'], 'a').tap { |f| f.sync = true }
  LOCK = Mutex.new

  def perform(t_us, warm)
    start = Process.clock_gettime(Process::CLOCK_MONOTONIC, :microsecond)
    LOCK.synchronize { STAMPS.write("#{warm == 1 ? 'w' : 'm'} #{t_us} #{start}\n") }
  end
end
