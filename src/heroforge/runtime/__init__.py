"""What a process needs to run the networks well: process groups and collectives (dist), and the
C library's allocator settings for CPU training and generation (allocator). Below train,
metrics and generate; imports nothing of heroforge but errors."""
