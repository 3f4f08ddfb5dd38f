"""The paper's technical claims that the book checks (the claims ledger, notebooks/10_claims).

Each entry: number, the paper's section, a short quotation or paraphrase, and the chapter that
checks it. Values and verdicts are not here: each chapter records them with ``lds.claim`` when it
runs, and the ledger collects them from the executed notebooks.
"""

from __future__ import annotations

CLAIMS = {
    1: ("Theoretical Framework and Methodology", "the most basic LDM is not one network but at least three", "01_ensemble"),
    2: ("A Two-Phase Architecture", "diffusion in a compressed latent space made consumer hardware enough", "01_ensemble"),
    3: ("CLIP", "CLIP scores how well any image matches any caption; the score filters the data", "02_clip_filtered_web"),
    4: ("CLIP", "filtering drops uncaptioned images and captions that deviate from English conventions", "02_clip_filtered_web"),
    5: ("CLIP", "two dog images sit close in the vector space; a dog and a bicycle far apart", "02_clip_filtered_web"),
    6: ("Tokenization and CLIP", "a 49,152-token vocabulary", "05_tokenization"),
    7: ("Tokenization and CLIP", "rarer words break into sub-word pieces, losing specificity", "05_tokenization"),
    8: ("Tokenization and CLIP", "tokens are mapped into a 768-dimensional space", "05_tokenization"),
    9: ("The Autoencoder", "compression loses something; the decoder reconstructs a plausible substitute", "03_autoencoder"),
    10: ("The Autoencoder", "the PatchGAN judges realism in every 70x70 window", "03_autoencoder"),
    11: ("The Autoencoder", "the autoencoder came into the LDM via VQGAN", "03_autoencoder"),
    12: ("The Autoencoder", "noise has no structure the autoencoder can keep", "03_autoencoder"),
    13: ("Generation / Fig. 01", "prompted with 'Gaussian noise', the model produces plausible images, not noise", "07_denoising"),
    14: ("Training (U-Net)", "the U-Net compresses to outlines and restores detail through skip connections", "04_unet_training"),
    15: ("Generation (U-Net decoding)", "generation settles rough outlines first; details follow", "07_denoising"),
    16: ("Generation (U-Net decoding)", "the scope of detail depends on the number of steps", "07_denoising"),
    17: ("Tokenization and CLIP (attention)", "cross-attention decides which words matter where; a modifier loses to its noun", "06_cross_attention"),
    18: ("Tokenization and CLIP (attention)", "prompt-engineering tokens are what the model values", "06_cross_attention"),
    19: ("Classifier-Free Guidance", "CFG was trained by dropping the prompt, so one network predicts with and without it", "08_guidance"),
    20: ("Classifier-Free Guidance / Fig. 02", "at CFG 0 the prompt has no influence", "08_guidance"),
    21: ("Classifier-Free Guidance", "low guidance stays near the statistical centre; extreme guidance saturates", "08_guidance"),
    22: ("Classifier-Free Guidance", "guidance sets the distance from the statistical centre", "08_guidance"),
    23: ("Generation", "the model generates its most represented composite, not the training distribution", "07_denoising"),
    24: ("Generation", "outputs converge on the statistically dominant 'mean image'", "08_guidance"),
}
