"""Audio -> image search with no audio-image pairs: CLIP and CLAP connected through text.

For online users (not run in CI). Needs the clip and clap plugins (`make install` installs
them) and either a network connection for the first run (open_clip downloads ViT-B-32's OpenAI
weights, laion_clap's 630k-fusion-best.pt comes from the Hugging Face hub) or local copies:

    MCRGRAPH_CLIP_PRETRAINED=/path/to/open_clip_pytorch_model.bin \\
    MCRGRAPH_CLAP_CHECKPOINT=/path/to/630k-fusion-best.pt \\
    MCRGRAPH_CLAP_TOKENIZER=/path/to/roberta-base \\
    python examples/clip_clap_audio_image.py --captions captions.txt --images photos/ --sounds sounds/ --query bark.wav

Two ways to the connected space:
- train it here: `--captions` (one caption per line; a few thousand, e.g. AudioCaps' and COCO's
  captions) plus unpaired `--images` and `--sounds` as memories (C-MCR's full method);
- or import the official C-MCR heads: `--official clap_clip.pt` (from the C-MCR repository).
"""
from __future__ import annotations

import argparse

import mcrgraph
from mcrgraph.io.items import read_items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captions", help="captions file (one per line) to train the connector on")
    ap.add_argument("--official", help="the official clap_clip.pt, instead of training")
    ap.add_argument("--images", required=True, help="folder of images: the gallery (and the image memory)")
    ap.add_argument("--sounds", help="folder of sounds: the audio memory when training")
    ap.add_argument("--query", required=True, action="append", help="a sound file to search with (repeatable)")
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args()

    images = read_items(args.images, "image")
    if args.official:
        from mcrgraph.fetch.official import import_official

        space = import_official(args.official, "clap-clip", overwrite=True)
    elif args.captions:
        memories = {"image": images}
        if args.sounds:
            memories["audio"] = read_items(args.sounds, "audio")
        space = mcrgraph.connect("clip", "clap", via="text", items=read_items(args.captions, "text"),
                                 memories=memories, overwrite=True, progress=True)
    else:
        ap.error("give --captions to train a connector, or --official clap_clip.pt")
    print(f"connected space {space.name}: {'/'.join(space.modalities)}")

    for query, hits in zip(args.query, mcrgraph.search("audio", args.query, "image", images, top=args.top)):
        print(f"\n{query}")
        for hit in hits:
            print(f"  {hit.score:.3f}  {hit.item}")


if __name__ == "__main__":
    main()
