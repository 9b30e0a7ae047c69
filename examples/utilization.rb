# A worker's side of aerie's utilization counters (utilization = yes), in Ruby (Fiddle, stdlib).
require "fiddle"

class Utilization
  FIELDS = %i[connections_active connections_total requests_active requests_total].freeze
  PAGE = 4096

  def initialize(value = ENV["AERIE_UTILIZATION"])
    return unless value
    path, offset = value.rpartition(":").values_at(0, 2)
    base = offset.to_i - offset.to_i % PAGE
    libc = Fiddle.dlopen(nil)
    mmap = Fiddle::Function.new(libc["mmap"], [Fiddle::TYPE_VOIDP, Fiddle::TYPE_SIZE_T,
      Fiddle::TYPE_INT, Fiddle::TYPE_INT, Fiddle::TYPE_INT, Fiddle::TYPE_LONG], Fiddle::TYPE_VOIDP)
    File.open(path, "r+b") { |f| @map = mmap.call(nil, PAGE, 3, 1, f.fileno, base) } # RW, SHARED
    @at = offset.to_i - base
  end

  # One writer per segment (this process): an aligned 8-byte store is atomic on Linux.
  def add(field, delta = 1)
    return unless @map
    at = @at + 8 * FIELDS.index(field)
    @map[at, 8] = [(@map[at, 8].unpack1("Q") + delta) % 2**64].pack("Q")
  end
end
