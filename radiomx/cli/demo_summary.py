"""``python -m radiomx.cli.demo_summary OUT``: where the demo table is and a few of its rows (used by ``make demo``)."""

from __future__ import annotations

import sys
from pathlib import Path

from radiomx.api import read_table
from radiomx.store.tables import features_path


def main(out: Path) -> None:
    table = read_table(out)
    print(f"\nFeature tables: {', '.join(str(features_path(out, t)) for t in sorted(table['tracer'].unique()))}")
    print(f"{len(table)} lesion rows x {table.shape[1]} columns; first rows:")
    cols = ["patient_id", "tracer", "lesion_id", "voxel_count", "original_firstorder_Maximum",
            "original_firstorder_Mean", "original_shape_MeshVolume", "original_glcm_Contrast"]
    print(table[cols].head(8).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nRead it with: pandas.read_parquet(path), duckdb \"SELECT * FROM 'path'\", or `radiomx table OUT`.")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
