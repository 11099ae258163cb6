// visattn — fiber context switch for the CUDA emulator (x86-64 System V). Position independent.
//
// void vaemu_ctx_switch(void** save_sp /*rdi*/, void* new_sp /*rsi*/)
//   Pushes the callee-saved registers, MXCSR and the x87 control word on the current stack, stores
//   the stack pointer in *save_sp, switches to new_sp and restores the same frame from there.
//
// A new fiber's initial frame (built in fiber.cpp), from its stack pointer S upwards:
//   [S+0] MXCSR (4 bytes) + x87 CW (2 bytes) + pad, [S+8] r15, [S+16] r14, [S+24] r13 = entry,
//   [S+32] r12 = argument, [S+40] rbx, [S+48] rbp, [S+56] return address = vaemu_fiber_trampoline;
//   S + 64 is 16-byte aligned.
#if defined(__x86_64__) && !defined(VAEMU_USE_UCONTEXT_ONLY)

        .text
        .globl  vaemu_ctx_switch
        .hidden vaemu_ctx_switch
        .type   vaemu_ctx_switch, @function
        .p2align 4
vaemu_ctx_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .cfi_endproc
        .size   vaemu_ctx_switch, .-vaemu_ctx_switch

// First code a fiber runs: entry(arg), entry never returns.
        .globl  vaemu_fiber_trampoline
        .hidden vaemu_fiber_trampoline
        .type   vaemu_fiber_trampoline, @function
        .p2align 4
vaemu_fiber_trampoline:
        .cfi_startproc
        .cfi_undefined rip
        xorl    %ebp, %ebp
        movq    %r12, %rdi
        callq   *%r13
        ud2
        .cfi_endproc
        .size   vaemu_fiber_trampoline, .-vaemu_fiber_trampoline

#endif

        .section .note.GNU-stack,"",@progbits
