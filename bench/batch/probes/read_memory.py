"""Peak RSS of just *reading* a Parquet file in 100k-row chunks, by reader and readahead setting
(isolates the source's share of liveml's memory). usage: read_memory.py FILE MODE
MODE: dataset (pyarrow.dataset to_batches, defaults: what liveml's sources.py does),
      dataset-noreadahead (batch_readahead=0, fragment_readahead=1, use_threads=False),
      dataset-nopb (pyarrow.dataset with ParquetFragmentScanOptions(pre_buffer=False)),
      iter_batches (ParquetFile.iter_batches, what floor.py does), iter_batches-nopb (pre_buffer=False)
      + "-pandas" suffix: also convert each batch to pandas (table.to_pandas())"""

import sys
import time

import psutil
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

path, mode = sys.argv[1], sys.argv[2]
to_pandas = mode.endswith("-pandas")
mode = mode.removesuffix("-pandas")
proc = psutil.Process()
base = proc.memory_info().rss
peak = 0
t = time.perf_counter()
if mode == "dataset":
    it = ds.dataset(path, format="parquet").to_batches(batch_size=100_000)
elif mode == "dataset-noreadahead":
    it = ds.dataset(path, format="parquet").to_batches(
        batch_size=100_000, batch_readahead=0, fragment_readahead=1, use_threads=False
    )
elif mode == "dataset-nopb":
    fmt = ds.ParquetFileFormat(default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False))
    it = ds.dataset(path, format=fmt).to_batches(batch_size=100_000)
elif mode == "iter_batches-nopb":
    it = pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=100_000)
else:
    it = pq.ParquetFile(path).iter_batches(batch_size=100_000)
rows = 0
for b in it:
    if to_pandas:
        pa.Table.from_batches([b]).to_pandas()
    rows += b.num_rows
    peak = max(peak, proc.memory_info().rss)
print(
    f"{mode}{'-pandas' if to_pandas else ''}: rows={rows} base={base / 2**20:.0f}MiB peak={peak / 2**20:.0f}MiB "
    f"pool_max={pa.default_memory_pool().max_memory() / 2**20:.0f}MiB {time.perf_counter() - t:.1f}s"
)
