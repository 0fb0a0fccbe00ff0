"""Point cloud -> text (zero-shot 3D classification) through CLIP's text space, with ULIP joined
to CLIP through images.

For online users (not run in CI). Needs the clip and ulip plugins and ULIP's released
pointbert_ULIP-2.pt, which no hub serves: download it where you are online (the URL is in
`mcrgraph_ulip.space.CHECKPOINT_URL`) and set MCRGRAPH_ULIP_CHECKPOINT, or put it in
~/.cache/mcrgraph/ulip/. CLIP's weights come as in clip_clap_audio_image.py.

    MCRGRAPH_ULIP_CHECKPOINT=/path/to/pointbert_ULIP-2.pt \\
    python examples/clip_ulip_3d_text.py --official ulip_clip.pt --clouds chairs/ --label chair --label table --label airplane

Without --official, C-MCR is trained here on --images (the shared modality, each encoded by CLIP
and by ULIP's image tower) with the point clouds as ULIP's memory.
"""
from __future__ import annotations

import argparse

import mcrgraph
from mcrgraph.io.items import read_items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", help="the official ulip_clip.pt, instead of training")
    ap.add_argument("--images", help="folder of images to connect on when training")
    ap.add_argument("--clouds", required=True, help="folder of .ply/.obj/.npy point clouds to classify")
    ap.add_argument("--label", action="append", required=True, help="a class name (repeatable)")
    ap.add_argument("--template", default="a point cloud of a {}.")
    args = ap.parse_args()

    clouds = read_items(args.clouds, "3d")
    if args.official:
        from mcrgraph.fetch.official import import_official

        space = import_official(args.official, "ulip-clip", overwrite=True)
    elif args.images:
        space = mcrgraph.connect("clip", "ulip", via="image", items=read_items(args.images, "image"),
                                 memories={"3d": clouds}, overwrite=True, progress=True)
    else:
        ap.error("give --official ulip_clip.pt, or --images to train a connector")
    print(f"connected space {space.name}: {'/'.join(space.modalities)}")

    # the planner compares 3d and text inside the connected space (text through CLIP's tower)
    for result in mcrgraph.classify("3d", clouds, args.label, templates=[args.template], top=3):
        print(f"{result.item}: " + ", ".join(f"{label} {p:.2f}" for label, p in result.ranked))


if __name__ == "__main__":
    main()
